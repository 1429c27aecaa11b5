//! The parts of a digest that a table keeps: the leading bits that pick its home line and a
//! 92-bit fingerprint taken from its last bytes.

/// Bits of the fingerprint kept in the slot word that also contains the displacement and a
/// flag.
pub(crate) const FINGERPRINT_HIGH_BITS: u32 = 28;
/// Mask of the fingerprint bits of that word.
pub(crate) const FINGERPRINT_HIGH_MASK: u32 = (1 << FINGERPRINT_HIGH_BITS) - 1;
/// Fingerprint length: 64 bits in one word plus the high bits.
pub const MAX_FINGERPRINT_BITS: u32 = 64 + FINGERPRINT_HIGH_BITS;
/// Bytes of the digest the fingerprint is read from, at its end.
const FINGERPRINT_BYTES: usize = 12;

/// Up to 92 bits of a digest that a slot stores and a lookup compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Fingerprint {
    pub(crate) high: u32,
    pub(crate) low: u64,
}

impl Fingerprint {
    /// Builds the mask that keeps the lowest `bits` bits of a fingerprint, at most
    /// [`MAX_FINGERPRINT_BITS`].
    pub(crate) fn mask(bits: u32) -> Fingerprint {
        let bits = bits.min(MAX_FINGERPRINT_BITS);
        let low = match bits {
            64.. => u64::MAX,
            _ => (1u64 << bits) - 1,
        };
        let high = (1u32 << bits.saturating_sub(64)) - 1;
        Fingerprint { high, low }
    }

    /// Number of bits a mask built by [`Fingerprint::mask`] keeps.
    pub(crate) fn mask_bits(self) -> u32 {
        self.low.count_ones() + self.high.count_ones()
    }
}

/// A digest as a table looks it up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Key {
    /// The first eight bytes read big-endian (zero-padded), so that prefixes sort like digests.
    pub(crate) prefix: u64,
    pub(crate) fingerprint: Fingerprint,
}

impl Key {
    /// Reads the key of `digest`, keeping the fingerprint bits that `mask` keeps.
    #[inline]
    pub(crate) fn new(digest: &[u8], mask: Fingerprint) -> Key {
        let (head, tail) = match digest.len() {
            // Fixed-size reads for every real digest (md5 and longer), without branches on
            // the length.
            len @ FINGERPRINT_BYTES.. => (
                <[u8; 8]>::try_from(&digest[..8]).unwrap_or_default(),
                <[u8; FINGERPRINT_BYTES]>::try_from(&digest[len - FINGERPRINT_BYTES..])
                    .unwrap_or_default(),
            ),
            _ => short_parts(digest),
        };
        let (low, high) = tail.split_at(8);
        let low = u64::from_le_bytes(low.try_into().unwrap_or_default());
        let high = u32::from_le_bytes(high.try_into().unwrap_or_default()) & FINGERPRINT_HIGH_MASK;
        Key {
            prefix: u64::from_be_bytes(head),
            fingerprint: Fingerprint {
                high: high & mask.high,
                low: low & mask.low,
            },
        }
    }
}

/// Returns the zero-padded head and tail of a digest shorter than the fingerprint.
#[cold]
fn short_parts(digest: &[u8]) -> ([u8; 8], [u8; FINGERPRINT_BYTES]) {
    let mut head = [0u8; 8];
    let lead = digest.len().min(8);
    head[..lead].copy_from_slice(&digest[..lead]);
    let mut tail = [0u8; FINGERPRINT_BYTES];
    tail[..digest.len()].copy_from_slice(digest);
    (head, tail)
}
