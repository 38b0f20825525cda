//! Sticky assignment of requests to split branches.
//!
//! The position of a key must not change between releases, replicas or
//! restarts, so it is computed with a fixed hash (FNV-1a, then the
//! SplitMix64 finaliser, because FNV leaves short keys clustered in the high
//! bits) rather than with std's `DefaultHasher`, whose output may change.

/// Where `key` falls in `[0, 1)`; the same salt and key always give the same
/// position.
pub(crate) fn position(salt: &str, key: &str) -> f64 {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = salt.bytes().chain(std::iter::once(0xff)).chain(key.bytes());
    let mut hash = bytes.fold(FNV_OFFSET, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME)
    });
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    // The top 53 bits fill an f64 mantissa exactly.
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

/// Index of the branch whose share of the cumulative `bounds` holds `position`.
pub(crate) fn branch(bounds: &[f64], position: f64) -> usize {
    let total = bounds.last().copied().unwrap_or(0.0);
    let target = position * total;
    bounds
        .iter()
        .position(|bound| target < *bound)
        .unwrap_or(bounds.len().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_fixed_and_spread() {
        // Pinned so that a change of hash, which would move customers
        // between A/B branches, fails here first.
        assert_eq!(
            position("sme_scoring$.nodes[1]", "customer-1"),
            0.2788405483455363
        );
        assert_eq!(position("", ""), 0.30929118745757567);
        assert_ne!(position("s", "42"), position("t", "42"));
        let below_half = (0..10_000)
            .filter(|i| position("s", &i.to_string()) < 0.5)
            .count();
        assert!((4_800..5_200).contains(&below_half), "{below_half}");
    }

    #[test]
    fn branches_follow_cumulative_weights() {
        let bounds = [90.0, 100.0];
        assert_eq!(branch(&bounds, 0.0), 0);
        assert_eq!(branch(&bounds, 0.899), 0);
        assert_eq!(branch(&bounds, 0.9), 1);
        assert_eq!(branch(&bounds, 0.999_999), 1);
    }
}
