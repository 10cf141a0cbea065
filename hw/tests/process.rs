//! Process plumbing: a parent maps a memfd, a child executable inherits and
//! maps it; the parent sees what the child wrote, its exit status, and can
//! kill, reap and replace it.

use chiplane_hw::process::{ChildCommand, ChildExit};
use chiplane_hw::shm::SharedMemory;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CHILD: &str = env!("CARGO_BIN_EXE_chiplane-shm-child");
/// Generous bound so a loaded 2-core CI machine never flakes; a healthy run
/// takes milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);

/// Wait (bounded) until the word at `offset` holds `value`.
fn await_word(shm: &SharedMemory, offset: usize, value: u64) -> bool {
    let deadline = Instant::now() + PATIENCE;
    // Acquire: pairs with the child's Release store.
    while shm.atomic_u64(offset).unwrap().load(Ordering::Acquire) != value {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

#[test]
fn child_writes_into_the_inherited_mapping_and_exits() {
    let shm = SharedMemory::create(1 << 16).unwrap();
    let mut child = ChildCommand::new(CHILD).arg("write").arg("4096").arg("51966").spawn(&shm).unwrap();
    let exit = child.wait_timeout(PATIENCE).unwrap().expect("child exits");
    assert_eq!(exit, ChildExit::Exited(7));
    // The child has exited: its store is visible (Acquire pairs with its Release).
    assert_eq!(shm.atomic_u64(4096).unwrap().load(Ordering::Acquire), 51966);
    // Reaped once, remembered after.
    assert_eq!(child.try_exit().unwrap(), Some(ChildExit::Exited(7)));
    assert!(!child.is_alive().unwrap());
    child.kill().unwrap();
}

#[test]
fn killed_child_is_reaped_and_reported_then_replaced() {
    let shm = SharedMemory::create(4096).unwrap();
    let cmd = ChildCommand::new(CHILD);
    let mut hung = cmd.clone().arg("write-and-hang").arg("128").arg("42").spawn(&shm).unwrap();
    assert!(await_word(&shm, 128, 42), "child never wrote");
    assert!(hung.is_alive().unwrap());
    assert_eq!(hung.wait_timeout(Duration::from_millis(20)).unwrap(), None, "it hangs until killed");
    hung.kill().unwrap();
    let exit = hung.wait().unwrap();
    assert!(exit.is_killed(), "{exit:?}");
    assert_eq!(hung.try_exit().unwrap(), Some(ChildExit::Signaled(libc::SIGKILL)));

    // A fresh child on the same region, through respawn (which kills and
    // reaps the old one first).
    let hung2 = cmd.clone().arg("write-and-hang").arg("136").arg("1").spawn(&shm).unwrap();
    assert!(await_word(&shm, 136, 1));
    let (old_exit, mut fresh) = cmd.clone().arg("write").arg("128").arg("43").respawn(hung2, &shm).unwrap();
    assert!(old_exit.is_killed());
    assert_eq!(fresh.wait_timeout(PATIENCE).unwrap(), Some(ChildExit::Exited(7)));
    assert_eq!(shm.atomic_u64(128).unwrap().load(Ordering::Acquire), 43);
}

#[test]
fn dropping_a_running_child_kills_and_reaps_it() {
    let shm = SharedMemory::create(4096).unwrap();
    let child = ChildCommand::new(CHILD).arg("write-and-hang").arg("0").arg("9").spawn(&shm).unwrap();
    assert!(await_word(&shm, 0, 9));
    let pid = child.pid() as libc::pid_t;
    drop(child);
    // SAFETY: kill with signal 0 only checks that the pid exists.
    let r = unsafe { libc::kill(pid, 0) };
    assert_eq!(r, -1, "reaped child must be gone (no zombie left)");
    assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::ESRCH));
}

#[test]
fn child_that_cannot_map_reports_through_its_exit_code() {
    let shm = SharedMemory::create(4096).unwrap();
    // Offset past the end: the child maps fine but refuses the word.
    let mut c = ChildCommand::new(CHILD).quiet().arg("write").arg("8192").arg("1").spawn(&shm).unwrap();
    assert_eq!(c.wait_timeout(PATIENCE).unwrap(), Some(ChildExit::Exited(2)));
    // A child started without the inherited memfd (a plain spawn naming an
    // fd it does not have) cannot map, and says so through its exit code.
    let status = std::process::Command::new(CHILD)
        .args(["write", "0", "1", "--chiplane-shm-fd", "999", "--chiplane-shm-len", "4096"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}
