//! Dies before it ever calls `next`.

fn main() {
    eprintln!("crashing on start");
    std::process::exit(3);
}
