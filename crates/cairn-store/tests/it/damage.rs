//! Damage never panics and never hides good data: real logs cut at every byte, and
//! with bytes flipped at random and at every position of the small ones.

use cairn_store::{BLOCK_SIZE, DamageKind, LogReader, OpenError};

use crate::{Read, fixture_logs, read_bytes};

const B: u64 = BLOCK_SIZE as u64;

/// Whether a cut at `cut` leaves only whole records (and perhaps part of the zero padding
/// after the last one): then nothing is torn and no damage can be seen.
fn is_clean_cut(records: &[Read], cut: u64) -> bool {
    if cut == 7 {
        return true;
    }
    records.iter().any(|r| {
        let padding = B - r.end % B;
        r.end == cut || (padding < 7 && cut > r.end && cut <= r.end + padding)
    })
}

fn check_cut(original: &[u8], records: &[Read], cut: usize, name: &str) {
    let bytes = &original[..cut];
    if cut == 0 {
        assert!(matches!(
            LogReader::new(bytes),
            Err(OpenError::NotALog { .. })
        ));
        return;
    }
    let (got, damage) = read_bytes(bytes);
    let complete = records.iter().take_while(|r| r.end <= cut as u64).count();
    assert_eq!(got.len(), complete, "{name} cut at {cut}: records");
    assert!(
        got.iter().zip(records).all(|(a, b)| a == b),
        "{name} cut at {cut}"
    );
    if is_clean_cut(records, cut as u64) {
        assert!(damage.is_empty(), "{name} cut at {cut}: {damage:?}");
    } else {
        assert_eq!(damage.len(), 1, "{name} cut at {cut}: {damage:?}");
        assert!(damage[0].is_torn_tail(), "{name} cut at {cut}: {damage:?}");
    }
}

#[test]
fn every_cut_of_every_fixture_keeps_the_records_before_it() {
    for log in fixture_logs() {
        let name = log.file_name().unwrap().to_string_lossy().into_owned();
        let original = std::fs::read(&log).unwrap();
        let (records, _) = read_bytes(&original);
        if original.len() <= 40_000 {
            for cut in 0..=original.len() {
                check_cut(&original, &records, cut, &name);
            }
        } else {
            // The large crashed log: every cut near each block boundary and a stride.
            let mut cuts: Vec<usize> = (0..original.len()).step_by(61).collect();
            for b in (0..original.len()).step_by(BLOCK_SIZE) {
                cuts.extend(b.saturating_sub(200)..(b + 200).min(original.len()));
            }
            cuts.push(original.len());
            for cut in cuts {
                check_cut(&original, &records, cut, &name);
            }
        }
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Flips byte `at` (xor with `mask`, non-zero) and checks what the reader makes of it.
fn check_flip(original: &[u8], records: &[Read], at: usize, mask: u8, name: &str) {
    let mut bytes = original.to_vec();
    bytes[at] ^= mask;
    let ctx = format!("{name}: byte {at} ^= {mask:#04x}");
    if at < 6 {
        // One damaged magic byte: reported, and nothing else lost.
        let (got, damage) = read_bytes(&bytes);
        assert_eq!(damage[0].kind, DamageKind::Header, "{ctx}");
        assert_eq!(got.len(), records.len(), "{ctx}");
        return;
    }
    let (got, damage) = read_bytes(&bytes);
    // Everything returned is an original record, in order.
    let mut originals = records.iter();
    for r in &got {
        assert!(
            originals.any(|o| o == r),
            "{ctx}: a record that was never written"
        );
    }
    // Every record outside the damaged block survives.
    let block = at as u64 / B;
    for r in records {
        let touches = r.start / B <= block && block <= (r.end - 1) / B;
        if !touches {
            assert!(
                got.contains(r),
                "{ctx}: lost the record at {} (block {block})",
                r.start
            );
        }
    }
    // The reader says where, unless the byte was padding or the torn tail's.
    let in_padding = records.iter().any(|r| {
        let padding = B - r.end % B;
        padding < 7 && (r.end..r.end + padding).contains(&(at as u64))
    });
    let last_end = records.last().map_or(7, |r| r.end);
    if at == 6 {
        assert!(
            matches!(damage[0].kind, DamageKind::Version { .. }),
            "{ctx}"
        );
    } else if !in_padding && (at as u64) < last_end {
        let located = damage.iter().any(|d| {
            d.offset <= at as u64 && d.resumed_at.is_none_or(|resumed| resumed > at as u64)
        });
        assert!(located, "{ctx}: damage not located: {damage:?}");
    }
}

#[test]
fn every_byte_flip_of_small_fixtures_loses_at_most_its_block() {
    for log in fixture_logs() {
        let original = std::fs::read(&log).unwrap();
        if original.len() > 10_000 {
            continue;
        }
        let name = log.file_name().unwrap().to_string_lossy().into_owned();
        let (records, _) = read_bytes(&original);
        for at in 0..original.len() {
            check_flip(&original, &records, at, 0x01, &name);
            check_flip(&original, &records, at, 0xFF, &name);
        }
    }
}

#[test]
fn random_byte_flips_lose_at_most_the_damaged_block() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for log in fixture_logs() {
        let original = std::fs::read(&log).unwrap();
        let name = log.file_name().unwrap().to_string_lossy().into_owned();
        let (records, _) = read_bytes(&original);
        for _ in 0..400 {
            let at = (rng.next() % original.len() as u64) as usize;
            let mask = (rng.next() % 255) as u8 + 1;
            check_flip(&original, &records, at, mask, &name);
        }
    }
}
