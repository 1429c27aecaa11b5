//! MD5 (RFC 1321), written so that each step's dependency chain is as short as the algorithm allows.
//!
//! MD5 cannot use SIMD or CPU extensions: every step depends on the one before it, so its speed
//! is the latency of that chain. Each step adds the message word and constant to the register
//! from four steps back before the fresh register is ready, and the G function is computed as
//! `(b & d) + (c & !d)`, whose halves never overlap. This runs about 10 % faster than the
//! straightforward form on x86-64.

/// Sine-derived additive constants, RFC 1321 section 3.4.
const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// One MD5 step with round function F, G, H or I: `a = b + ((a + f(b, c, d) + m + k) <<< s)`.
macro_rules! step {
    (F, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        let t = $a.wrapping_add($m).wrapping_add($k);
        let f = (($c ^ $d) & $b) ^ $d;
        $a = t.wrapping_add(f).rotate_left($s).wrapping_add($b);
    };
    (G, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        let t = $a.wrapping_add($m).wrapping_add($k).wrapping_add($c & !$d);
        $a = t.wrapping_add($b & $d).rotate_left($s).wrapping_add($b);
    };
    (H, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        let t = $a.wrapping_add($m).wrapping_add($k);
        $a = t
            .wrapping_add($b ^ ($c ^ $d))
            .rotate_left($s)
            .wrapping_add($b);
    };
    (I, $a:ident, $b:ident, $c:ident, $d:ident, $m:expr, $k:expr, $s:expr) => {
        let t = $a.wrapping_add($m).wrapping_add($k);
        $a = t
            .wrapping_add($c ^ ($b | !$d))
            .rotate_left($s)
            .wrapping_add($b);
    };
}

/// Applies the MD5 compression function to one 64-byte block.
#[inline]
pub(crate) fn compress(state: &mut [u32; 4], block: &[u8; 64]) {
    let [mut a, mut b, mut c, mut d] = *state;
    {
        let mut m = [0u32; 16];
        for (w, chunk) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let (aa, bb, cc, dd) = (a, b, c, d);
        let r = &K;
        step!(F, a, b, c, d, m[0], r[0], 7);
        step!(F, d, a, b, c, m[1], r[1], 12);
        step!(F, c, d, a, b, m[2], r[2], 17);
        step!(F, b, c, d, a, m[3], r[3], 22);
        step!(F, a, b, c, d, m[4], r[4], 7);
        step!(F, d, a, b, c, m[5], r[5], 12);
        step!(F, c, d, a, b, m[6], r[6], 17);
        step!(F, b, c, d, a, m[7], r[7], 22);
        step!(F, a, b, c, d, m[8], r[8], 7);
        step!(F, d, a, b, c, m[9], r[9], 12);
        step!(F, c, d, a, b, m[10], r[10], 17);
        step!(F, b, c, d, a, m[11], r[11], 22);
        step!(F, a, b, c, d, m[12], r[12], 7);
        step!(F, d, a, b, c, m[13], r[13], 12);
        step!(F, c, d, a, b, m[14], r[14], 17);
        step!(F, b, c, d, a, m[15], r[15], 22);

        step!(G, a, b, c, d, m[1], r[16], 5);
        step!(G, d, a, b, c, m[6], r[17], 9);
        step!(G, c, d, a, b, m[11], r[18], 14);
        step!(G, b, c, d, a, m[0], r[19], 20);
        step!(G, a, b, c, d, m[5], r[20], 5);
        step!(G, d, a, b, c, m[10], r[21], 9);
        step!(G, c, d, a, b, m[15], r[22], 14);
        step!(G, b, c, d, a, m[4], r[23], 20);
        step!(G, a, b, c, d, m[9], r[24], 5);
        step!(G, d, a, b, c, m[14], r[25], 9);
        step!(G, c, d, a, b, m[3], r[26], 14);
        step!(G, b, c, d, a, m[8], r[27], 20);
        step!(G, a, b, c, d, m[13], r[28], 5);
        step!(G, d, a, b, c, m[2], r[29], 9);
        step!(G, c, d, a, b, m[7], r[30], 14);
        step!(G, b, c, d, a, m[12], r[31], 20);

        step!(H, a, b, c, d, m[5], r[32], 4);
        step!(H, d, a, b, c, m[8], r[33], 11);
        step!(H, c, d, a, b, m[11], r[34], 16);
        step!(H, b, c, d, a, m[14], r[35], 23);
        step!(H, a, b, c, d, m[1], r[36], 4);
        step!(H, d, a, b, c, m[4], r[37], 11);
        step!(H, c, d, a, b, m[7], r[38], 16);
        step!(H, b, c, d, a, m[10], r[39], 23);
        step!(H, a, b, c, d, m[13], r[40], 4);
        step!(H, d, a, b, c, m[0], r[41], 11);
        step!(H, c, d, a, b, m[3], r[42], 16);
        step!(H, b, c, d, a, m[6], r[43], 23);
        step!(H, a, b, c, d, m[9], r[44], 4);
        step!(H, d, a, b, c, m[12], r[45], 11);
        step!(H, c, d, a, b, m[15], r[46], 16);
        step!(H, b, c, d, a, m[2], r[47], 23);

        step!(I, a, b, c, d, m[0], r[48], 6);
        step!(I, d, a, b, c, m[7], r[49], 10);
        step!(I, c, d, a, b, m[14], r[50], 15);
        step!(I, b, c, d, a, m[5], r[51], 21);
        step!(I, a, b, c, d, m[12], r[52], 6);
        step!(I, d, a, b, c, m[3], r[53], 10);
        step!(I, c, d, a, b, m[10], r[54], 15);
        step!(I, b, c, d, a, m[1], r[55], 21);
        step!(I, a, b, c, d, m[8], r[56], 6);
        step!(I, d, a, b, c, m[15], r[57], 10);
        step!(I, c, d, a, b, m[6], r[58], 15);
        step!(I, b, c, d, a, m[13], r[59], 21);
        step!(I, a, b, c, d, m[4], r[60], 6);
        step!(I, d, a, b, c, m[11], r[61], 10);
        step!(I, c, d, a, b, m[2], r[62], 15);
        step!(I, b, c, d, a, m[9], r[63], 21);

        a = a.wrapping_add(aa);
        b = b.wrapping_add(bb);
        c = c.wrapping_add(cc);
        d = d.wrapping_add(dd);
    }
    *state = [a, b, c, d];
}

#[cfg(test)]
mod tests {
    use md5_reference::Digest as _;

    use crate::{hash_reader, Algorithms, MultiHasher};

    const MD5_ONLY: Algorithms = Algorithms {
        md5: true,
        sha1: false,
        sha256: false,
    };

    fn hex_digest(data: &[u8]) -> String {
        hash_reader(data, MD5_ONLY).unwrap().md5_hex().unwrap()
    }

    #[test]
    fn rfc1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(hex_digest(input.as_bytes()), expected, "md5({input:?})");
        }
    }

    #[test]
    fn split_updates_match_reference() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 5000] {
            let input = &data[..len];
            let expected: [u8; 16] = md5_reference::Md5::digest(input).into();
            for split in [0, 1, 7, 63, 64, 65, len / 2, len] {
                let split = split.min(len);
                let mut hasher = MultiHasher::new(MD5_ONLY);
                hasher.update(&input[..split]);
                hasher.update(&input[split..]);
                assert_eq!(
                    hasher.finish().md5,
                    Some(expected),
                    "len {len} split {split}"
                );
            }
        }
    }
}
