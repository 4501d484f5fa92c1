//! Constants and small pure helpers of the `.wandb` byte format (see the crate docs).
//!
//! Nothing here does IO; the writer and reader share these definitions so the two can
//! never disagree about a byte.

/// Size of a block; chunks never cross a multiple of this offset.
pub const BLOCK_SIZE: usize = 32 * 1024;

/// Size of a chunk header: crc32 (4), length (2), type (1).
pub const CHUNK_HEADER_LEN: usize = 7;

/// The file header: `:W&B`, magic 0xBEE1 little-endian, store version 0.
pub const FILE_HEADER: [u8; FILE_HEADER_LEN] = [b':', b'W', b'&', b'B', 0xE1, 0xBE, 0];

/// Length of [`FILE_HEADER`].
pub const FILE_HEADER_LEN: usize = 7;

/// The only store version this crate writes and the only one it reads as such.
pub(crate) const STORE_VERSION: u8 = 0;

/// How a chunk relates to the record it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ChunkType {
    /// The whole record.
    Full = 1,
    /// The first piece of a record that continues in the next block.
    First = 2,
    /// A piece that neither starts nor ends its record.
    Middle = 3,
    /// The final piece of a record.
    Last = 4,
}

impl ChunkType {
    /// The chunk type for a type byte, or `None` for a byte no writer produces.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Full),
            2 => Some(Self::First),
            3 => Some(Self::Middle),
            4 => Some(Self::Last),
            _ => None,
        }
    }

    /// The type of a piece of a record, given whether it is the first and the last piece.
    pub(crate) fn for_piece(first: bool, last: bool) -> Self {
        match (first, last) {
            (true, true) => Self::Full,
            (true, false) => Self::First,
            (false, false) => Self::Middle,
            (false, true) => Self::Last,
        }
    }
}

/// W&B's chunk checksum: CRC-32 (IEEE) of the type byte followed by the payload. (The
/// writer and reader compute it in place over the contiguous type byte and payload; this
/// is the reference the tests check against.)
#[cfg(test)]
pub(crate) fn chunk_crc(ty: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&[ty]);
    hasher.update(payload);
    hasher.finalize()
}

/// Bytes left in the block that contains absolute file offset `offset`.
pub(crate) fn block_left(offset: u64) -> usize {
    BLOCK_SIZE - (offset % BLOCK_SIZE as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_magic_is_low_bits_of_crc_of_the_name() {
        let crc = crc32fast::hash(b"Weights & Biases");
        assert_eq!(
            (crc & 0xFFFF) as u16,
            u16::from_le_bytes([FILE_HEADER[4], FILE_HEADER[5]])
        );
    }

    #[test]
    fn crc_covers_type_then_payload() {
        let mut joined = vec![1u8];
        joined.extend_from_slice(b"payload");
        assert_eq!(chunk_crc(1, b"payload"), crc32fast::hash(&joined));
    }
}
