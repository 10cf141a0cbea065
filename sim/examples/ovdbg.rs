use chiplane_sim::options::Shape;
use chiplane_sim::overlap::{latencies, trial, Mode};
use chiplane_sim::rng::Rng;
fn main() {
    let mut rng = Rng::new(0 ^ 0x0_7E41_A9);
    for shape in [Shape::L2, Shape::L3] {
        for delay in [0u64, 2_000_000] {
            for _ in 0..5 {
                let base = latencies(shape);
                let mut j = |x: u64| x - x / 100 + rng.below(x / 50 + 1);
                let lat = (j(base.0), j(base.1), j(base.2));
                let (s, _) = trial(shape, Mode::Serial, delay, lat, false).unwrap();
                let (o, _) = trial(shape, Mode::Overlap, delay, lat, false).unwrap();
                let si = lat.0 + delay + lat.1 + lat.2;
                let oi = lat.0.max(delay + lat.1) + lat.2;
                println!("{shape:?} {delay}: lat {lat:?} serial {s} (+{}) overlap {o} (+{}) eff {:.4}", s as i64 - si as i64, o as i64 - oi as i64, (s - o) as f64 / (s - oi) as f64);
            }
        }
    }
}
