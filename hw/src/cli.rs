//! The `chiplane` command line, parsed by hand.
//!
//! The command has one subcommand and seven flags; a hand parser keeps the
//! README's first command (`cargo run --release --bin chiplane -- overlap`)
//! free of an argument-parsing dependency tree that took longer to compile
//! on two cores than chiplane itself.
//!
//! Grammar: `chiplane [-h|--help|-V|--version] overlap [FLAGS]`, where a
//! flag's value is the next argument or follows `=` (`--pairs 5`,
//! `--pairs=5`). Every mistake is a [`CliError`] naming the flag and what
//! it accepts; [`parse`] never panics and never exits.

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use crate::l3::Device;
use crate::overlap::{Levels, Options};

/// What the command line asks for.
#[derive(Debug)]
pub enum Cli {
    /// Print this text (the top-level or the subcommand's help) and exit 0.
    Help(String),
    /// Print the version and exit 0.
    Version(String),
    /// Run the overlap experiment with these options.
    Overlap(Options),
}

/// A command line that cannot be run: print it with the usage and exit 2.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CliError {
    /// No subcommand was given.
    MissingCommand,
    /// The subcommand is not known (the closest known one, if any is close).
    UnknownCommand {
        /// What was given.
        given: String,
        /// A known subcommand within two edits.
        suggestion: Option<&'static str>,
    },
    /// A flag the subcommand does not take.
    UnknownFlag {
        /// What was given.
        given: String,
        /// A known flag within two edits.
        suggestion: Option<&'static str>,
    },
    /// A flag that takes a value was last on the line.
    MissingValue {
        /// The flag.
        flag: &'static str,
    },
    /// A flag's value does not parse or is out of range.
    BadValue {
        /// The flag.
        flag: &'static str,
        /// What was given.
        given: String,
        /// What the flag accepts.
        expected: &'static str,
    },
    /// An argument that is not valid UTF-8 where text is needed.
    NotUnicode {
        /// The argument, lossily decoded.
        given: String,
    },
    /// A positional argument where only flags are taken.
    Unexpected {
        /// What was given.
        given: String,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hint = |f: &mut fmt::Formatter<'_>, s: &Option<&'static str>| match s {
            Some(s) => write!(f, " (did you mean '{s}'?)"),
            None => Ok(()),
        };
        match self {
            CliError::MissingCommand => write!(f, "a subcommand is required (overlap)"),
            CliError::UnknownCommand { given, suggestion } => {
                write!(f, "unrecognized subcommand '{given}'")?;
                hint(f, suggestion)
            }
            CliError::UnknownFlag { given, suggestion } => {
                write!(f, "unexpected argument '{given}'")?;
                hint(f, suggestion)
            }
            CliError::MissingValue { flag } => write!(f, "{flag} needs a value"),
            CliError::BadValue { flag, given, expected } => {
                write!(f, "invalid value '{given}' for {flag}: expected {expected}")
            }
            CliError::NotUnicode { given } => write!(f, "argument '{given}' is not valid UTF-8"),
            CliError::Unexpected { given } => write!(f, "unexpected argument '{given}'"),
        }
    }
}

impl std::error::Error for CliError {}

/// One line of usage, printed under every error.
pub const USAGE: &str = "Usage: chiplane overlap [--device host|cuda] [--level l2|l3|both] [--pairs N] \
[--delays MS,..] [--repeat N] [--c1-ms MS] [--trace FILE]";

const HELP: &str = "\
chiplane: prepare the next callable while the chip still runs the last one,
through a model-checked mailbox protocol, and measure what it saves.

Usage: chiplane <COMMAND>

Commands:
  overlap  The overlap experiment: C1 (a long repeat_vector_add) runs while C2
           (heavy_prepare) is registered, against the serial order; paired
           trials, medians with 95% intervals, efficiency against the ideal

Options:
  -h, --help     Print help
  -V, --version  Print version
";

const OVERLAP_HELP: &str = "\
The overlap experiment: C1 (a long repeat_vector_add) runs while C2
(heavy_prepare) is registered, against the serial order; paired trials,
medians with 95% intervals, efficiency against the ideal.

Usage: chiplane overlap [OPTIONS]

Options:
      --device <DEVICE>  The device: host (the host CPU) or cuda (needs the
                         `cuda` feature and a GPU) [default: host]
      --level <LEVEL>    Which levels: l2 (in process), l3 (a chip child
                         process) or both [default: both]
      --pairs <N>        Serial/overlap pairs per level and delay, at least 1
                         [default: 15]
      --delays <MS,..>   Delays before C2's register, in ms, comma separated
                         [default: 0,2]
      --repeat <N>       Fixed C1 repeat count (default: calibrated to --c1-ms)
      --c1-ms <MS>       Target duration of one run of C1, in ms [default: 15]
      --trace <FILE>     Write a Chrome/Perfetto trace (lanes as tracks) to
                         this file
  -h, --help             Print help
";

const COMMANDS: &[&str] = &["overlap"];
const OVERLAP_FLAGS: &[&str] =
    &["--device", "--level", "--pairs", "--delays", "--repeat", "--c1-ms", "--trace", "--help"];

/// Parses the arguments after the program name.
pub fn parse<I>(args: I) -> Result<Cli, CliError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut args = args.into_iter().map(Into::into);
    let Some(first) = args.next() else { return Err(CliError::MissingCommand) };
    let first = text(first)?;
    match first.as_str() {
        "-h" | "--help" | "help" => Ok(Cli::Help(HELP.to_string())),
        "-V" | "--version" => Ok(Cli::Version(format!("chiplane {}", env!("CARGO_PKG_VERSION")))),
        "overlap" => overlap(args),
        other if other.starts_with('-') => Err(CliError::UnknownFlag {
            given: other.to_string(),
            suggestion: closest(other, &["--help", "--version"]),
        }),
        other => Err(CliError::UnknownCommand { given: other.to_string(), suggestion: closest(other, COMMANDS) }),
    }
}

fn overlap(mut args: impl Iterator<Item = OsString>) -> Result<Cli, CliError> {
    let mut o = Options::default();
    while let Some(arg) = args.next() {
        // `--trace` takes a path, which need not be UTF-8: split before decoding.
        let (flag, inline) = split_flag(&arg)?;
        if flag == "-h" || flag == "--help" {
            return Ok(Cli::Help(OVERLAP_HELP.to_string()));
        }
        if !flag.starts_with('-') {
            return Err(CliError::Unexpected { given: flag });
        }
        let Some(&known) = OVERLAP_FLAGS.iter().find(|f| **f == flag) else {
            return Err(CliError::UnknownFlag { suggestion: closest(&flag, OVERLAP_FLAGS), given: flag });
        };
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or(CliError::MissingValue { flag: known })?,
        };
        if known == "--trace" {
            o.trace = Some(PathBuf::from(value));
            continue;
        }
        let value = text(value)?;
        let bad = |expected| CliError::BadValue { flag: known, given: value.clone(), expected };
        match known {
            "--device" => {
                o.device = match value.as_str() {
                    "host" => Device::Host,
                    "cuda" => Device::Cuda,
                    _ => return Err(bad("host or cuda")),
                }
            }
            "--level" => {
                o.levels = match value.as_str() {
                    "l2" => Levels::L2,
                    "l3" => Levels::L3,
                    "both" => Levels::Both,
                    _ => return Err(bad("l2, l3 or both")),
                }
            }
            "--pairs" => {
                o.pairs = match value.parse::<usize>() {
                    Ok(n) if n >= 1 => n,
                    _ => return Err(bad("an integer of at least 1")),
                }
            }
            "--delays" => {
                o.delays_ms = value
                    .split(',')
                    .map(|d| d.trim().parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| bad("milliseconds as integers, comma separated"))?;
            }
            "--repeat" => o.c1_repeat = Some(value.parse::<u64>().map_err(|_| bad("an integer"))?),
            "--c1-ms" => {
                o.c1_target_ms = match value.parse::<f64>() {
                    Ok(ms) if ms.is_finite() && ms > 0.0 => ms,
                    _ => return Err(bad("a positive number of milliseconds")),
                }
            }
            _ => unreachable!("every flag in OVERLAP_FLAGS is matched above"),
        }
    }
    Ok(Cli::Overlap(o))
}

/// Splits `--flag=value` (the flag must be UTF-8, the value need not be).
fn split_flag(arg: &OsString) -> Result<(String, Option<OsString>), CliError> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = arg.as_bytes();
    match bytes.iter().position(|&b| b == b'=') {
        Some(eq) if bytes.starts_with(b"--") => {
            let flag = std::str::from_utf8(&bytes[..eq])
                .map_err(|_| CliError::NotUnicode { given: arg.to_string_lossy().into_owned() })?;
            Ok((flag.to_string(), Some(std::ffi::OsStr::from_bytes(&bytes[eq + 1..]).to_os_string())))
        }
        _ => Ok((text(arg.clone())?, None)),
    }
}

fn text(arg: OsString) -> Result<String, CliError> {
    arg.into_string().map_err(|a| CliError::NotUnicode { given: a.to_string_lossy().into_owned() })
}

/// The known word within two edits of `given`, if any (the nearest).
fn closest(given: &str, known: &[&'static str]) -> Option<&'static str> {
    known.iter().map(|k| (edit_distance(given, k), *k)).filter(|(d, _)| *d <= 2).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlap_of(args: &[&str]) -> Options {
        match parse(args.iter().copied()) {
            Ok(Cli::Overlap(o)) => o,
            other => panic!("{args:?} gave {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let o = overlap_of(&["overlap"]);
        let d = Options::default();
        assert_eq!((o.device, o.levels, o.pairs, o.delays_ms.clone()), (Device::Host, Levels::Both, 15, vec![0, 2]));
        assert_eq!((o.c1_target_ms, o.c1_repeat, o.trace), (d.c1_target_ms, None, None));
    }

    #[test]
    fn every_flag_in_both_spellings() {
        let spaced = overlap_of(&[
            "overlap", "--device", "cuda", "--level", "l3", "--pairs", "3", "--delays", "0,5,10", "--repeat", "7",
            "--c1-ms", "2.5", "--trace", "t.json",
        ]);
        let inline = overlap_of(&[
            "overlap",
            "--device=cuda",
            "--level=l3",
            "--pairs=3",
            "--delays=0,5,10",
            "--repeat=7",
            "--c1-ms=2.5",
            "--trace=t.json",
        ]);
        for o in [spaced, inline] {
            assert_eq!((o.device, o.levels, o.pairs), (Device::Cuda, Levels::L3, 3));
            assert_eq!((o.delays_ms, o.c1_repeat, o.c1_target_ms), (vec![0, 5, 10], Some(7), 2.5));
            assert_eq!(o.trace, Some(PathBuf::from("t.json")));
        }
    }

    #[test]
    fn help_and_version() {
        assert!(matches!(parse(["--help"]), Ok(Cli::Help(h)) if h.contains("overlap")));
        assert!(matches!(parse(["overlap", "--pairs", "3", "-h"]), Ok(Cli::Help(h)) if h.contains("--c1-ms")));
        assert!(matches!(parse(["-V"]), Ok(Cli::Version(v)) if v.starts_with("chiplane ")));
    }

    #[test]
    fn mistakes_are_typed_errors() {
        let none: [&str; 0] = [];
        assert_eq!(parse(none).unwrap_err(), CliError::MissingCommand);
        assert_eq!(
            parse(["overlpa"]).unwrap_err(),
            CliError::UnknownCommand { given: "overlpa".into(), suggestion: Some("overlap") }
        );
        assert_eq!(
            parse(["overlap", "--pair", "3"]).unwrap_err(),
            CliError::UnknownFlag { given: "--pair".into(), suggestion: Some("--pairs") }
        );
        assert_eq!(parse(["overlap", "--pairs"]).unwrap_err(), CliError::MissingValue { flag: "--pairs" });
        for (flag, value) in [
            ("--pairs", "0"),
            ("--pairs", "-1"),
            ("--pairs", "x"),
            ("--device", "tpu"),
            ("--level", "l4"),
            ("--delays", "0,,2"),
            ("--repeat", "1.5"),
            ("--c1-ms", "0"),
            ("--c1-ms", "NaN"),
        ] {
            let e = parse(["overlap", flag, value]).unwrap_err();
            assert!(matches!(&e, CliError::BadValue { flag: f, given, .. } if *f == flag && given == value), "{e:?}");
            assert!(e.to_string().contains(flag), "{e}");
        }
        assert_eq!(parse(["overlap", "stray"]).unwrap_err(), CliError::Unexpected { given: "stray".into() });
    }

    #[test]
    fn a_trace_path_need_not_be_unicode() {
        use std::os::unix::ffi::OsStringExt;
        let path = OsString::from_vec(vec![b't', 0xff, b'.', b'j']);
        let mut inline = b"--trace=".to_vec();
        inline.extend_from_slice(path.as_encoded_bytes());
        for args in [
            vec![OsString::from("overlap"), OsString::from("--trace"), path.clone()],
            vec![OsString::from("overlap"), OsString::from_vec(inline)],
        ] {
            match parse(args) {
                Ok(Cli::Overlap(o)) => assert_eq!(o.trace, Some(PathBuf::from(path.clone()))),
                other => panic!("{other:?}"),
            }
        }
        let bad = OsString::from_vec(vec![b'-', b'-', 0xff]);
        assert!(matches!(parse([OsString::from("overlap"), bad]), Err(CliError::NotUnicode { .. })));
    }
}
