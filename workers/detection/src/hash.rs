//! Stable, dependency-free hashing (FNV-1a 64) for fingerprints and alert ids.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a 64 over a sequence of byte strings, each followed by a 0x1f separator.
pub fn fnv1a64(parts: &[&[u8]]) -> u64 {
    let mut h = OFFSET;
    for part in parts {
        for &b in part.iter().chain(std::iter::once(&0x1f)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    h
}

/// FNV-1a 64 of the parts as 16 lower-case hex digits.
pub fn fnv1a64_hex(parts: &[&[u8]]) -> String {
    format!("{:016x}", fnv1a64(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector_and_separator_matter() {
        // FNV-1a 64 of "a" followed by 0x1f, computed by hand from the reference algorithm.
        let mut h = OFFSET;
        for b in [b'a', 0x1f] {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
        assert_eq!(fnv1a64(&[b"a"]), h);
        assert_ne!(fnv1a64(&[b"ab", b"c"]), fnv1a64(&[b"a", b"bc"]));
        assert_eq!(fnv1a64_hex(&[b"x"]).len(), 16);
    }
}
