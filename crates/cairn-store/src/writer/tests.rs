//! Writer framing, byte by byte, and its behaviour around sync policies and faults.

use std::io::{self, Write};
use std::time::Duration;

use super::*;
use crate::format::FILE_HEADER_LEN;

/// A sink that counts syncs and can be told to fail.
#[derive(Default)]
struct TestSink {
    bytes: Vec<u8>,
    syncs: usize,
    fail_writes: bool,
}

impl Write for TestSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.fail_writes {
            // Half the bytes land, then the disk is full.
            let half = buf.len() / 2;
            if half > 0 {
                self.bytes.extend_from_slice(&buf[..half]);
                return Ok(half);
            }
            return Err(io::Error::other("disk full"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LogSink for TestSink {
    fn sync_data(&mut self) -> io::Result<()> {
        self.syncs += 1;
        Ok(())
    }
}

/// (offset, crc ok, len, type) of every chunk header the bytes contain, found by walking
/// the format independently of the reader.
fn chunks(bytes: &[u8]) -> Vec<(usize, usize, u8)> {
    let mut out = Vec::new();
    let mut at = FILE_HEADER_LEN;
    while at < bytes.len() {
        let left = BLOCK_SIZE - at % BLOCK_SIZE;
        if left < CHUNK_HEADER_LEN {
            assert!(
                bytes[at..at + left].iter().all(|b| *b == 0),
                "padding at {at} is zero"
            );
            at += left;
            continue;
        }
        let len = u16::from_le_bytes([bytes[at + 4], bytes[at + 5]]) as usize;
        let ty = bytes[at + 6];
        let crc = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let payload = &bytes[at + 7..at + 7 + len];
        assert_eq!(
            crc,
            crate::format::chunk_crc(ty, payload),
            "crc of chunk at {at}"
        );
        out.push((at, len, ty));
        at += CHUNK_HEADER_LEN + len;
    }
    out
}

fn write_all(payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut writer = LogWriter::new(Vec::new(), SyncPolicy::Never).unwrap();
    for p in payloads {
        writer.append(p).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn worked_example_of_a_small_record() {
    let payload: Vec<u8> = (0..10).collect();
    let bytes = write_all(std::slice::from_ref(&payload));
    assert_eq!(bytes.len(), 24);
    assert_eq!(&bytes[..7], b":W&B\xe1\xbe\x00");
    assert_eq!(&bytes[8 + 3..14], &[10, 0, 1]);
    assert_eq!(&bytes[14..], &payload[..]);
    assert_eq!(chunks(&bytes), vec![(7, 10, 1)]);
}

#[test]
fn a_record_larger_than_a_block_is_split() {
    // A 40000-byte record after a 10-byte one starts at offset 24: FIRST of 32737 bytes,
    // then LAST of 7263 at the block boundary.
    let bytes = write_all(&[vec![1; 10], vec![2; 40_000]]);
    assert_eq!(
        chunks(&bytes),
        vec![(7, 10, 1), (24, 32_737, 2), (32_768, 7263, 4)]
    );
    assert_eq!(bytes.len(), 32_768 + 7 + 7263);
}

#[test]
fn a_record_spanning_three_blocks_has_a_middle() {
    let bytes = write_all(&[vec![3; 70_000]]);
    assert_eq!(
        chunks(&bytes),
        vec![
            (7, 32_754, 2),
            (32_768, 32_761, 3),
            (65_536, 70_000 - 32_754 - 32_761, 4)
        ]
    );
}

#[test]
fn exactly_seven_bytes_left_start_with_an_empty_first_chunk() {
    // Fill block 0 so that 7 bytes remain: 7 (header) + 7 + n = 32768 - 7.
    let n = BLOCK_SIZE - 7 - 7 - 7;
    let bytes = write_all(&[vec![4; n], vec![5; 20]]);
    assert_eq!(
        chunks(&bytes),
        vec![(7, n, 1), (BLOCK_SIZE - 7, 0, 2), (BLOCK_SIZE, 20, 4)]
    );
}

#[test]
fn fewer_than_seven_bytes_left_are_zero_padding() {
    for left in 1..7 {
        let n = BLOCK_SIZE - 7 - 7 - left;
        let bytes = write_all(&[vec![6; n], vec![7; 5]]);
        assert_eq!(
            chunks(&bytes),
            vec![(7, n, 1), (BLOCK_SIZE, 5, 1)],
            "left={left}"
        );
    }
}

#[test]
fn a_record_ending_on_a_block_boundary_needs_no_padding() {
    let n = BLOCK_SIZE - 7 - 7;
    let bytes = write_all(&[vec![8; n], vec![9; 3]]);
    assert_eq!(chunks(&bytes), vec![(7, n, 1), (BLOCK_SIZE, 3, 1)]);
}

#[test]
fn empty_records_are_valid() {
    let bytes = write_all(&[vec![], vec![]]);
    assert_eq!(chunks(&bytes), vec![(7, 0, 1), (14, 0, 1)]);
}

#[test]
fn push_returns_record_offsets_and_commit_writes() {
    let mut writer = LogWriter::new(TestSink::default(), SyncPolicy::Never).unwrap();
    assert_eq!(writer.push(&[1; 3]).unwrap(), 7);
    assert_eq!(writer.push(&[1; 3]).unwrap(), 17);
    // Pushed bytes wait for the commit.
    assert_eq!(writer.sink().bytes.len(), 7);
    writer.commit().unwrap();
    assert_eq!(writer.sink().bytes.len(), 27);
    assert_eq!(writer.end_offset(), 27);
}

#[test]
fn drop_commits_pushed_records() {
    let mut sink = TestSink::default();
    {
        let mut writer = LogWriter::new(&mut sink, SyncPolicy::Never).unwrap();
        writer.push(&[1; 3]).unwrap();
    }
    assert_eq!(sink.bytes.len(), 17);
}

#[test]
fn sync_policies() {
    let mut writer = LogWriter::new(TestSink::default(), SyncPolicy::EveryCommit).unwrap();
    writer.append(&[1]).unwrap();
    writer.append(&[1]).unwrap();
    assert_eq!(writer.sink().syncs, 3, "header commit + two records");

    let mut writer = LogWriter::new(TestSink::default(), SyncPolicy::Never).unwrap();
    writer.append(&[1]).unwrap();
    assert_eq!(writer.sink().syncs, 0);
    assert_eq!(writer.finish().unwrap().syncs, 0);

    let mut writer = LogWriter::new(
        TestSink::default(),
        SyncPolicy::Interval(Duration::from_secs(3600)),
    )
    .unwrap();
    writer.append(&[1]).unwrap();
    assert_eq!(writer.sink().syncs, 0, "interval not yet due");
    assert_eq!(writer.finish().unwrap().syncs, 1, "finish syncs");

    let mut writer =
        LogWriter::new(TestSink::default(), SyncPolicy::Interval(Duration::ZERO)).unwrap();
    writer.append(&[1]).unwrap();
    assert!(writer.sink().syncs >= 1, "a due interval syncs at commit");
}

#[test]
fn a_failed_write_poisons_the_writer() {
    let mut writer = LogWriter::new(TestSink::default(), SyncPolicy::Never)
        .unwrap()
        .with_path("/runs/x/run-x.wandb");
    writer.sink.as_mut().unwrap().fail_writes = true;
    let err = writer.append(&[1; 100]).unwrap_err();
    assert!(err.to_string().contains("/runs/x/run-x.wandb"), "{err}");
    assert!(err.to_string().contains("disk full"), "{err}");
    let err = writer.append(&[1; 100]).unwrap_err();
    assert!(matches!(err, WriteError::Poisoned { .. }), "{err}");
}

#[test]
fn create_refuses_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run-a.wandb");
    LogWriter::create(&path, SyncPolicy::Never)
        .unwrap()
        .finish()
        .unwrap();
    let err = LogWriter::create(&path, SyncPolicy::Never).unwrap_err();
    assert!(err.to_string().contains("run-a.wandb"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), FILE_HEADER);
}
