//! The chip child process of the L3 worker. See `chiplane_hw::l3::child`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    std::process::exit(chiplane_hw::l3::child::child_main(args));
}
