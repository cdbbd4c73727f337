//! Gives a WebM recording its duration. Browsers' `MediaRecorder` writes WebM as a stream:
//! the segment's `Info` has no `Duration`, so players show no length and cannot seek. Once
//! the recording has ended we know how long it is; this writes that into `Info`. Pure byte
//! work on the EBML structure, so it is tested on the server like any other code.

const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
/// All value bits set: an element whose size is not known (a live stream's segment).
const UNKNOWN: u64 = (1 << 56) - 1;

/// A variable-length integer's bytes (its length is told by the first byte's leading zeros),
/// at most `max` of them.
fn vint(data: &[u8], at: usize, max: usize) -> Option<&[u8]> {
    let len = data.get(at)?.leading_zeros() as usize + 1;
    if len > max {
        return None;
    }
    data.get(at..at + len)
}

/// An element ID: 1 to 4 bytes, marker bits kept. Returns `(id, length)`.
fn read_id(data: &[u8], at: usize) -> Option<(u32, usize)> {
    let bytes = vint(data, at, 4)?;
    Some((
        bytes.iter().fold(0u32, |v, b| (v << 8) | u32::from(*b)),
        bytes.len(),
    ))
}

/// A size: 1 to 8 bytes, marker bit removed. Returns `(size, length)`; an all-ones value is
/// [`UNKNOWN`] whatever its length.
fn read_size(data: &[u8], at: usize) -> Option<(u64, usize)> {
    let bytes = vint(data, at, 8)?;
    let (first, len) = (bytes[0], bytes.len());
    let mask = if len == 8 { 0 } else { 0xFFu8 >> len };
    let value = bytes[1..]
        .iter()
        .fold(u64::from(first & mask), |v, b| (v << 8) | u64::from(*b));
    let all_ones = (1u64 << (7 * len)) - 1;
    Some((if value == all_ones { UNKNOWN } else { value }, len))
}

/// A size in the 8-byte form (room for anything).
fn write_size(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

fn write_id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    out.extend_from_slice(&bytes[skip..]);
}

/// The recording with `Info/Duration` set to `duration_ms`, or `None` if the data is not a
/// WebM file this understands (the caller then keeps the original).
pub fn with_duration(data: &[u8], duration_ms: f64) -> Option<Vec<u8>> {
    let (id, id_len) = read_id(data, 0)?;
    if id != EBML {
        return None;
    }
    let (header_size, size_len) = read_size(data, id_len)?;
    let segment_at = id_len + size_len + usize::try_from(header_size).ok()?;
    let (id, seg_id_len) = read_id(data, segment_at)?;
    if id != SEGMENT {
        return None;
    }
    let (segment_size, seg_size_len) = read_size(data, segment_at + seg_id_len)?;
    let segment_body = segment_at + seg_id_len + seg_size_len;

    // Find Info among the segment's first children.
    let mut at = segment_body;
    let (info_at, info_body, info_end) = loop {
        let (id, il) = read_id(data, at)?;
        let (size, sl) = read_size(data, at + il)?;
        if size == UNKNOWN {
            return None;
        }
        let end = at + il + sl + usize::try_from(size).ok()?;
        if end > data.len() {
            return None;
        }
        if id == INFO {
            break (at, at + il + sl, end);
        }
        at = end;
    };

    // Info's children, without any duration there was, then ours.
    let mut info = Vec::new();
    let mut scale = 1_000_000f64;
    let mut at = info_body;
    while at < info_end {
        let (id, il) = read_id(data, at)?;
        let (size, sl) = read_size(data, at + il)?;
        let end = at + il + sl + usize::try_from(size).ok()?;
        if end > info_end {
            return None;
        }
        if id == TIMECODE_SCALE {
            let value = data[at + il + sl..end]
                .iter()
                .fold(0u64, |v, b| (v << 8) | u64::from(*b));
            if value > 0 {
                scale = value as f64;
            }
        }
        if id != DURATION {
            info.extend_from_slice(&data[at..end]);
        }
        at = end;
    }
    write_id(&mut info, DURATION);
    info.push(0x88); // 8 bytes
    info.extend_from_slice(&(duration_ms * 1_000_000.0 / scale).to_be_bytes());

    let mut new_info = Vec::with_capacity(info.len() + 12);
    write_id(&mut new_info, INFO);
    write_size(&mut new_info, info.len() as u64);
    new_info.extend_from_slice(&info);

    let mut out = Vec::with_capacity(data.len() + 32);
    out.extend_from_slice(&data[..segment_at + seg_id_len]);
    if segment_size == UNKNOWN {
        out.extend_from_slice(&data[segment_at + seg_id_len..segment_body]);
    } else {
        let old_info = (info_end - info_at) as u64;
        write_size(&mut out, segment_size - old_info + new_info.len() as u64);
    }
    out.extend_from_slice(&data[segment_body..info_at]);
    out.extend_from_slice(&new_info);
    out.extend_from_slice(&data[info_end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(id: u32, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_id(&mut out, id);
        write_size(&mut out, body.len() as u64);
        out.extend_from_slice(body);
        out
    }

    /// What MediaRecorder writes, in miniature: a header, then a segment of unknown size with
    /// Info (no duration), Tracks and a cluster.
    fn recording(segment_size: Option<u64>) -> Vec<u8> {
        let mut file = element(EBML, &element(0x4282, b"webm"));
        let mut info = element(TIMECODE_SCALE, &[0x0F, 0x42, 0x40]); // 1 000 000
        info.extend(element(0x4D80, b"Chrome"));
        let mut segment = vec![0x18, 0x53, 0x80, 0x67];
        let mut body = element(INFO, &info);
        body.extend(element(0x1654_AE6B, &[0xAE, 0x80]));
        body.extend(element(0x1F43_B675, &[0xE7, 0x81, 0x00]));
        match segment_size {
            None => segment.extend([0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
            Some(_) => write_size(&mut segment, body.len() as u64),
        }
        file.extend(segment);
        file.extend(body);
        file
    }

    fn duration_of(data: &[u8]) -> f64 {
        let at = data
            .windows(3)
            .position(|w| w == [0x44, 0x89, 0x88])
            .expect("a duration element");
        f64::from_be_bytes(data[at + 3..at + 11].try_into().unwrap())
    }

    #[test]
    fn a_streamed_recording_gets_its_duration() {
        let original = recording(None);
        let fixed = with_duration(&original, 4321.5).unwrap();
        assert_eq!(duration_of(&fixed), 4321.5);
        assert!(
            fixed.ends_with(&[0x1F, 0x43, 0xB6, 0x75, 0x01, 0, 0, 0, 0, 0, 0, 3, 0xE7, 0x81, 0x00])
        );
        // Doing it again replaces the duration instead of adding a second one.
        let again = with_duration(&fixed, 10.0).unwrap();
        assert_eq!(duration_of(&again), 10.0);
        assert_eq!(again.len(), fixed.len());
    }

    #[test]
    fn a_known_segment_size_grows_with_info() {
        let original = recording(Some(0));
        let fixed = with_duration(&original, 1000.0).unwrap();
        let segment_at = fixed
            .windows(4)
            .position(|w| w == [0x18, 0x53, 0x80, 0x67])
            .unwrap();
        let (size, len) = read_size(&fixed, segment_at + 4).unwrap();
        assert_eq!(segment_at + 4 + len + size as usize, fixed.len());
        assert_eq!(duration_of(&fixed), 1000.0);
    }

    #[test]
    fn anything_else_is_left_alone() {
        assert_eq!(with_duration(b"not a webm file", 1.0), None);
        assert_eq!(with_duration(&[], 1.0), None);
        let mut truncated = recording(None);
        truncated.truncate(30);
        assert_eq!(with_duration(&truncated, 1.0), None);
    }
}
