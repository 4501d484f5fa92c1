//! Reader behaviour on logs built by the writer: round trips, cuts, and hand-made damage.
//! (Real W&B files and exhaustive damage are in `tests/it`.)

use super::*;
use crate::format::chunk_crc;
use crate::{LogWriter, SyncPolicy};

fn build(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).unwrap();
    for p in payloads {
        writer.push(p).unwrap();
    }
    writer.finish().unwrap()
}

/// Records (offset, payload) and damage, in the order the reader reports them.
fn read(bytes: &[u8]) -> (Vec<(u64, Vec<u8>)>, Vec<Damage>) {
    let mut reader = LogReader::new(bytes).unwrap();
    let (mut records, mut damage) = (Vec::new(), Vec::new());
    while let Some(item) = reader.next() {
        match item {
            Ok(r) => records.push((r.offset, r.payload.to_vec())),
            Err(e) => damage.push(e.damage().cloned().expect("only damage from a slice")),
        }
    }
    (records, damage)
}

fn payloads() -> Vec<Vec<u8>> {
    // Small and large records, so some span two and three blocks.
    let sizes = [10, 0, 300, 40_000, 5, 32_761, 70_000, 1, 7, 20_000, 12];
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect()
}

#[test]
fn round_trip() {
    let payloads = payloads();
    let (records, damage) = read(&build(&payloads));
    assert!(damage.is_empty(), "{damage:?}");
    let got: Vec<_> = records.into_iter().map(|(_, p)| p).collect();
    assert_eq!(got, payloads);
}

#[test]
fn offsets_are_where_the_writer_put_records() {
    let payloads = payloads();
    let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).unwrap();
    let offsets: Vec<u64> = payloads.iter().map(|p| writer.push(p).unwrap()).collect();
    let (records, _) = read(&writer.finish().unwrap());
    assert_eq!(records.iter().map(|r| r.0).collect::<Vec<_>>(), offsets);
}

#[test]
fn every_cut_keeps_the_records_before_it() {
    let payloads = payloads();
    let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).unwrap();
    let mut ends = Vec::new();
    for p in &payloads {
        writer.push(p).unwrap();
        ends.push(writer.end_offset() as usize);
    }
    let bytes = writer.finish().unwrap();
    // Every cut near the start and around block boundaries, then a stride (the
    // integration tests cover every cut of real W&B files).
    let near = |b: usize| b.saturating_sub(300)..(b + 300).min(bytes.len());
    let cuts = (1..600)
        .chain(near(BLOCK_SIZE))
        .chain(near(2 * BLOCK_SIZE))
        .chain(near(3 * BLOCK_SIZE))
        .chain((1..bytes.len()).step_by(97));
    for cut in cuts {
        let (records, damage) = read(&bytes[..cut]);
        let complete = ends.iter().filter(|&&end| end <= cut).count();
        assert_eq!(records.len(), complete, "cut at {cut}");
        for (i, (_, p)) in records.iter().enumerate() {
            assert_eq!(p, &payloads[i], "record {i} at cut {cut}");
        }
        let at_boundary = cut == FILE_HEADER_LEN || ends.contains(&cut);
        if at_boundary {
            assert!(damage.is_empty(), "cut at {cut}: {damage:?}");
        } else {
            assert_eq!(damage.len(), 1, "cut at {cut}: {damage:?}");
            assert!(damage[0].is_torn_tail(), "cut at {cut}: {damage:?}");
        }
    }
}

#[test]
fn a_bad_checksum_costs_the_block_and_reading_resumes() {
    let payloads: Vec<Vec<u8>> = (0..400u16)
        .map(|i| {
            let mut p = i.to_le_bytes().to_vec();
            p.resize(200, 9);
            p
        })
        .collect();
    let mut bytes = build(&payloads);
    // Corrupt the payload of the first chunk of block 1.
    bytes[BLOCK_SIZE + 20] ^= 0x40;
    let (records, damage) = read(&bytes);
    assert_eq!(damage.len(), 1, "{damage:?}");
    let d = &damage[0];
    assert_eq!(d.kind, DamageKind::Checksum);
    assert!(d.offset <= BLOCK_SIZE as u64 + 20);
    assert_eq!(d.resumed_at, Some(2 * BLOCK_SIZE as u64));
    // Records entirely outside block 1 survive.
    let survivors: Vec<_> = records.iter().map(|(_, p)| p.clone()).collect();
    let per_block = BLOCK_SIZE / 207;
    assert!(
        survivors.len() >= payloads.len() - per_block - 2,
        "{}",
        survivors.len()
    );
    // In order, each one of the originals, and all of those past the damaged block.
    let mut originals = payloads.iter();
    for s in &survivors {
        assert!(
            originals.any(|p| p == s),
            "a survivor that was never written"
        );
    }
    assert_eq!(survivors.last(), payloads.last());
}

#[test]
fn zeroed_space_is_reported_once_per_block() {
    let payloads: Vec<Vec<u8>> = (0..10).map(|i| vec![i as u8; 100]).collect();
    let mut bytes = build(&payloads);
    bytes.resize(3 * BLOCK_SIZE, 0); // preallocated tail
    let (records, damage) = read(&bytes);
    assert_eq!(records.len(), 10);
    assert_eq!(
        damage
            .iter()
            .filter(|d| d.kind == DamageKind::Zeroed)
            .count(),
        3
    );
}

#[test]
fn header_damage() {
    let bytes = build(&[vec![1; 10]]);
    let mut one = bytes.clone();
    one[2] = b'x';
    let (records, damage) = read(&one);
    assert_eq!(records.len(), 1);
    assert_eq!(damage[0].kind, DamageKind::Header);
    assert_eq!(damage[0].offset, 2);

    let mut version = bytes.clone();
    version[6] = 1;
    let (records, damage) = read(&version);
    assert_eq!(records.len(), 1);
    assert_eq!(damage[0].kind, DamageKind::Version { version: 1 });

    let mut two = bytes.clone();
    two[0] = b'x';
    two[1] = b'y';
    assert!(matches!(
        LogReader::new(&two[..]),
        Err(OpenError::NotALog { .. })
    ));
    assert!(matches!(
        LogReader::new(&b""[..]),
        Err(OpenError::NotALog { .. })
    ));
    assert!(matches!(
        LogReader::new(&b"PK\x03\x04 zip"[..]),
        Err(OpenError::NotALog { .. })
    ));
    // A log cut inside its header is torn, not foreign.
    let (records, damage) = read(&bytes[..4]);
    assert!(records.is_empty());
    assert!(damage[0].is_torn_tail());
}

#[test]
fn orphans_and_unfinished_records() {
    // A LAST chunk with no record in progress, then a FIRST that never finishes before a
    // FULL: both reported, the FULL records around them kept.
    let mut bytes = FILE_HEADER.to_vec();
    for (ty, payload) in [
        (1u8, &b"a"[..]),
        (4, b"orphan"),
        (1, b"b"),
        (2, b"unf"),
        (1, b"c"),
    ] {
        bytes.extend_from_slice(&chunk_crc(ty, payload).to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        bytes.push(ty);
        bytes.extend_from_slice(payload);
    }
    let mut reader = LogReader::new(&bytes[..]).unwrap();
    let mut seen = Vec::new();
    while let Some(item) = reader.next() {
        seen.push(match item {
            Ok(r) => String::from_utf8(r.payload.to_vec()).unwrap(),
            Err(e) => format!("{:?}", e.damage().unwrap().kind),
        });
    }
    assert_eq!(seen, ["a", "Orphan", "b", "Unfinished", "c"]);
}

#[test]
fn damage_messages_name_the_file_and_offset() {
    let mut bytes = build(&[vec![1; 10], vec![2; 10]]);
    bytes[33] ^= 1; // payload of the second record, whose chunk starts at 24
    let mut reader = LogReader::new(&bytes[..])
        .unwrap()
        .with_path("runs/run-x.wandb");
    let mut messages = Vec::new();
    while let Some(item) = reader.next() {
        if let Err(e) = item {
            messages.push(e.to_string());
        }
    }
    assert_eq!(
        messages,
        ["runs/run-x.wandb: checksum mismatch in chunk at byte 24; resumed at byte 41"]
    );
}

#[test]
fn typed_records_report_payloads_that_do_not_decode() {
    use prost::Message;
    let good = Record {
        num: 1,
        ..Default::default()
    }
    .encode_to_vec();
    let bytes = build(&[good.clone(), vec![0xFF, 0xFF], good]);
    let items: Vec<_> = LogReader::new(&bytes[..]).unwrap().records().collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().1.num, 1);
    let err = items[1].as_ref().unwrap_err();
    assert!(
        matches!(err, ReadError::Decode { offset, .. } if *offset == 7 + 7 + good_len(&items)),
        "{err}"
    );
    assert!(items[2].is_ok());
}

fn good_len(items: &[Result<(u64, Record), ReadError>]) -> u64 {
    use prost::Message;
    items[0].as_ref().unwrap().1.encoded_len() as u64
}

#[test]
fn a_follower_resumes_where_the_last_pass_ended() {
    // A log that grows: each pass sees a prefix (a commit may be cut mid-write), reads the
    // whole records in it, and the next pass continues from the end of the last one.
    let payloads = payloads();
    let bytes = build(&payloads);
    for step in [997usize, 4_096, 32_768, 50_000] {
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut resume = FILE_HEADER_LEN as u64;
        let mut seen = FILE_HEADER_LEN;
        while seen < bytes.len() {
            seen = (seen + step).min(bytes.len());
            let mut reader = LogReader::new(std::io::Cursor::new(&bytes[..seen])).unwrap();
            reader.seek_to(resume).unwrap();
            while let Some(item) = reader.next() {
                match item {
                    Ok(r) => {
                        got.push(r.payload.to_vec());
                        resume = reader.position();
                    }
                    Err(e) => {
                        let damage = e.damage().cloned().unwrap();
                        assert!(damage.is_torn_tail(), "cut at {seen}: {damage:?}");
                    }
                }
            }
        }
        assert_eq!(got, payloads, "step {step}");
    }
}
