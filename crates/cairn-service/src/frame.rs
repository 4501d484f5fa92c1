//! The service socket's framing: `'W'`, a little-endian `u32` length, then that many bytes
//! of protobuf (`ServerRequest` from the SDK, `ServerResponse` back), both directions.
//!
//! [`read_request`] reads one whole frame from a blocking reader; a clean end of stream
//! between frames is `Ok(None)`. Anything else that is wrong — another magic byte, a
//! length over [`MAX_FRAME`], a stream cut inside a frame, bytes that are not a
//! `ServerRequest` — is a [`FrameError`], after which the stream cannot be resynchronised
//! and the caller closes that connection. [`write_response`] writes one frame in a single
//! `write_all` so concurrent writers holding a lock never interleave.

use std::io::{self, Read, Write};

use cairn_proto::{ServerRequest, ServerResponse};
use prost::Message as _;

/// The first byte of every frame.
pub const MAGIC: u8 = b'W';
/// The largest payload accepted. The SDK's largest frames are artifact manifests and
/// `python_packages`; a length beyond this is a broken or hostile stream, not a request.
pub const MAX_FRAME: usize = 1 << 30;

/// Why a connection's stream cannot be read on.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame does not start with `'W'`.
    #[error("bad frame header: byte 0x{0:02x}, expected 'W'")]
    BadMagic(u8),
    /// The announced length is larger than [`MAX_FRAME`].
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(u64),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({got} of {want} bytes)")]
    Truncated { got: usize, want: usize },
    /// The payload is not a `ServerRequest`.
    #[error("frame of {len} bytes is not a ServerRequest: {source}")]
    Decode {
        len: usize,
        #[source]
        source: prost::DecodeError,
    },
    /// Reading failed.
    #[error("reading the socket: {0}")]
    Io(#[from] io::Error),
}

/// Reads into `buf` until it is full; how many bytes came before the end of the stream.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

/// Reads the next frame's payload; `Ok(None)` at a clean end of stream.
pub fn read_frame(reader: &mut impl Read) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; 5];
    let got = read_full(reader, &mut header)?;
    if got == 0 {
        return Ok(None);
    }
    if header[0] != MAGIC {
        return Err(FrameError::BadMagic(header[0]));
    }
    if got < header.len() {
        return Err(FrameError::Truncated { got, want: 5 });
    }
    let len = u32::from_le_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    // Grown as bytes arrive: a header announcing a gigabyte reserves nothing by itself.
    let mut payload = Vec::with_capacity(len.min(1 << 20));
    reader.by_ref().take(len as u64).read_to_end(&mut payload)?;
    if payload.len() < len {
        return Err(FrameError::Truncated {
            got: payload.len(),
            want: len,
        });
    }
    Ok(Some(payload))
}

/// Reads and decodes the next `ServerRequest`; `Ok(None)` at a clean end of stream.
pub fn read_request(reader: &mut impl Read) -> Result<Option<ServerRequest>, FrameError> {
    let Some(payload) = read_frame(reader)? else {
        return Ok(None);
    };
    ServerRequest::decode(payload.as_slice())
        .map(Some)
        .map_err(|source| FrameError::Decode {
            len: payload.len(),
            source,
        })
}

/// One frame holding `message`.
pub fn encode(message: &impl prost::Message) -> Vec<u8> {
    let len = message.encoded_len();
    let mut out = Vec::with_capacity(5 + len);
    out.push(MAGIC);
    // Responses are built by this process and stay far below 4 GiB.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    message.encode_raw(&mut out);
    out
}

/// Writes `response` as one frame.
pub fn write_response(writer: &mut impl Write, response: &ServerResponse) -> io::Result<()> {
    writer.write_all(&encode(response))?;
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_proto::server_request::ServerRequestType;
    use cairn_proto::{ServerInformTeardownRequest, ServerResponse};

    fn teardown(id: &str) -> ServerRequest {
        ServerRequest {
            request_id: id.to_owned(),
            server_request_type: Some(ServerRequestType::InformTeardown(
                ServerInformTeardownRequest {
                    exit_code: 3,
                    ..Default::default()
                },
            )),
        }
    }

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut bytes = encode(&teardown("a"));
        bytes.extend(encode(&teardown("")));
        assert_eq!(bytes[0], b'W');
        let mut reader = bytes.as_slice();
        assert_eq!(read_request(&mut reader).unwrap(), Some(teardown("a")));
        assert_eq!(read_request(&mut reader).unwrap(), Some(teardown("")));
        assert_eq!(read_request(&mut reader).unwrap(), None);

        let mut out = Vec::new();
        let response = ServerResponse {
            request_id: "r".into(),
            server_response_type: None,
        };
        write_response(&mut out, &response).unwrap();
        assert_eq!(out, encode(&response));
    }

    #[test]
    fn broken_streams_are_named() {
        let good = encode(&teardown("a"));
        let check = |bytes: &[u8], want: &str| {
            let err = read_request(&mut &bytes[..]).unwrap_err();
            assert!(err.to_string().contains(want), "{err} lacks {want:?}");
        };
        check(b"X\x01\x00\x00\x00\x00", "byte 0x58");
        check(&good[..3], "stream ended inside a frame (3 of 5 bytes)");
        check(&good[..good.len() - 1], "stream ended inside a frame");
        check(b"W\xff\xff\xff\xff", "larger than");
        check(b"W\x03\x00\x00\x00\xff\xff\xff", "is not a ServerRequest");
    }
}
