//! `berth-monitor`: the per-pod monitor process (see `berth_agent::monitor`).

fn main() {
    std::process::exit(berth_agent::monitor::server::main());
}
