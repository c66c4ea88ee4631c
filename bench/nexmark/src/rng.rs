//! The generator's random numbers: SplitMix64 seeded per event, so an event depends only on
//! the seed and its id (not on which subtask made it, nor on what was generated before).

/// A SplitMix64 generator (Steele, Lea and Flood; the algorithm of Java's `SplittableRandom`).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The SplitMix64 finalizer: a bijection on `u64` that spreads every input bit.
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// The generator of event `event_id` under `seed`.
    pub fn for_event(seed: u64, event_id: u64) -> Self {
        Rng {
            state: mix64(seed ^ mix64(event_id.wrapping_add(GOLDEN))),
        }
    }

    /// A generator seeded directly (for tables built once per seed).
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix64(self.state)
    }

    /// Uniform in `0..bound` (`bound > 0`; 0 when `bound` is 0). Lemire's multiply-shift; the
    /// bias for the bounds the generator uses (< 2^32) is below 2^-32.
    pub fn next_below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_below_stays_in_bounds_and_covers_them() {
        let mut rng = Rng::new(7);
        let mut seen = [0u32; 13];
        for _ in 0..13_000 {
            let v = rng.next_below(13);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        assert_eq!(rng.next_below(0), 0);
    }

    #[test]
    fn same_seed_and_event_give_the_same_numbers() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_event(1, 99).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::for_event(1, 99).next_u64(),
            Rng::for_event(2, 99).next_u64()
        );
        assert_ne!(
            Rng::for_event(1, 99).next_u64(),
            Rng::for_event(1, 100).next_u64()
        );
    }
}
