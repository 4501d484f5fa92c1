//! Reservoir samples of each top-level numeric metric, for the sparklines of the finish
//! footer: at most [`RESERVOIR`] values per metric whatever the run's length, in arrival
//! order, kept as `f32` — W&B's design (Algorithm L, Li 1994).
//!
//! Pure state fed by the handler at every committed row; read by `sampled_history`.

/// Values kept per metric.
pub(crate) const RESERVOIR: usize = 48;

/// A small deterministic generator (PCG-XSH-RR 64/32), one per run.
#[derive(Debug, Clone)]
struct Pcg(u64);

impl Pcg {
    fn next_u32(&mut self) -> u32 {
        let old = self.0;
        self.0 = old
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// A uniform float in (0, 1).
    fn unit(&mut self) -> f64 {
        (f64::from(self.next_u32()) + 0.5) / 4_294_967_296.0
    }
}

#[derive(Debug, Clone)]
struct Reservoir {
    /// (arrival index, value).
    items: Vec<(u64, f32)>,
    seen: u64,
    /// Index of the next value to accept once the reservoir is full.
    next: u64,
    w: f64,
}

/// Samples of every top-level numeric metric, in the order metrics first appeared.
#[derive(Debug)]
pub(crate) struct Sampler {
    rng: Pcg,
    metrics: indexmap::IndexMap<String, Reservoir, rustc_hash::FxBuildHasher>,
}

impl Sampler {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            rng: Pcg(seed | 1),
            metrics: indexmap::IndexMap::default(),
        }
    }

    pub(crate) fn observe(&mut self, key: &str, value: f64) {
        let rng = &mut self.rng;
        let r = match self.metrics.get_mut(key) {
            Some(r) => r,
            None => self.metrics.entry(key.to_owned()).or_insert(Reservoir {
                items: Vec::with_capacity(RESERVOIR),
                seen: 0,
                next: 0,
                w: 1.0,
            }),
        };
        let index = r.seen;
        r.seen += 1;
        let value = value as f32;
        if r.items.len() < RESERVOIR {
            r.items.push((index, value));
            if r.items.len() == RESERVOIR {
                r.w = (rng.unit().ln() / RESERVOIR as f64).exp();
                r.next = index + skip(rng, r.w) + 1;
            }
            return;
        }
        if index == r.next {
            let slot = rng.next_u32() as usize % RESERVOIR;
            r.items[slot] = (index, value);
            r.w *= (rng.unit().ln() / RESERVOIR as f64).exp();
            r.next = index + skip(rng, r.w) + 1;
        }
    }

    /// Every metric's samples in arrival order.
    pub(crate) fn samples(&self) -> Vec<(String, Vec<f32>)> {
        self.metrics
            .iter()
            .map(|(k, r)| {
                let mut items = r.items.clone();
                items.sort_by_key(|(i, _)| *i);
                (k.clone(), items.into_iter().map(|(_, v)| v).collect())
            })
            .collect()
    }
}

fn skip(rng: &mut Pcg, w: f64) -> u64 {
    let s = (rng.unit().ln() / (1.0 - w).ln()).floor();
    if s.is_finite() && s >= 0.0 {
        s.min(u64::MAX as f64 / 2.0) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_everything_until_full_then_a_bounded_ordered_sample() {
        let mut s = Sampler::new(7);
        for i in 0..10 {
            s.observe("loss", f64::from(i));
        }
        assert_eq!(
            s.samples()[0].1,
            (0..10).map(|i| i as f32).collect::<Vec<_>>()
        );
        for i in 10..100_000 {
            s.observe("loss", f64::from(i));
        }
        let sample = &s.samples()[0].1;
        assert_eq!(sample.len(), RESERVOIR);
        assert!(sample.windows(2).all(|w| w[0] < w[1]), "arrival order");
        // A uniform sample of 0..100k has most values past the first 48.
        assert!(sample.iter().filter(|v| **v > 1000.0).count() > RESERVOIR / 2);
    }
}
