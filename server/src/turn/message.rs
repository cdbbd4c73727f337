//! Just enough of STUN's framing (RFC 8489) for the gate in front of the TURN server: a
//! message's type, one of its attributes, and the error response that carries a nonce.

/// STUN's magic cookie, bytes 4..8 of every message.
pub const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

pub const USERNAME: u16 = 0x0006;
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
const ERROR_CODE: u16 = 0x0009;
const REALM: u16 = 0x0014;
pub const NONCE: u16 = 0x0015;

/// The TURN methods whose requests need credentials.
pub const ALLOCATE: u16 = 0x003;
const REFRESH: u16 = 0x004;
const CREATE_PERMISSION: u16 = 0x008;
const CHANNEL_BIND: u16 = 0x009;

/// The class bits of a message type.
const REQUEST: u16 = 0x0000;
const ERROR_RESPONSE: u16 = 0x0110;

/// A STUN message's method and class (`None` for anything else: ChannelData, garbage).
fn kind(message: &[u8]) -> Option<(u16, u16)> {
    if message.len() < 20 || message[4..8] != MAGIC_COOKIE || message[0] & 0xc0 != 0 {
        return None;
    }
    let kind = u16::from_be_bytes([message[0], message[1]]);
    let class = kind & 0x0110;
    let method = (kind & 0x000f) | ((kind & 0x00e0) >> 1) | ((kind & 0x3e00) >> 2);
    Some((method, class))
}

/// The method of a request that needs credentials (Allocate, Refresh, CreatePermission,
/// ChannelBind).
pub fn authenticated_request(message: &[u8]) -> Option<u16> {
    match kind(message)? {
        (method @ (ALLOCATE | REFRESH | CREATE_PERMISSION | CHANNEL_BIND), REQUEST) => Some(method),
        _ => None,
    }
}

/// The method and error code of an error response to such a request.
pub fn error_response_code(message: &[u8]) -> Option<(u16, u16)> {
    match kind(message)? {
        (method @ (ALLOCATE | REFRESH | CREATE_PERMISSION | CHANNEL_BIND), ERROR_RESPONSE) => {
            let code = attribute(message, ERROR_CODE)?;
            let code = code.get(2..4)?;
            Some((method, u16::from(code[0] & 0x07) * 100 + u16::from(code[1])))
        }
        _ => None,
    }
}

/// The value of the first attribute of type `wanted`.
pub fn attribute(message: &[u8], wanted: u16) -> Option<&[u8]> {
    let length = usize::from(u16::from_be_bytes([*message.get(2)?, *message.get(3)?]));
    let mut rest = message.get(20..20 + length)?;
    while rest.len() >= 4 {
        let kind = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let value = rest.get(4..4 + len)?;
        if kind == wanted {
            return Some(value);
        }
        rest = rest.get(4 + len.div_ceil(4) * 4..)?;
    }
    None
}

/// The error response (`code`: 401 or 438) to `request`, with the realm and a nonce to use.
pub fn nonce_error(request: &[u8], method: u16, code: u16, realm: &str, nonce: &[u8]) -> Vec<u8> {
    let mut attributes = Vec::new();
    let reason: &[u8] = if code == 401 {
        b"Unauthorized"
    } else {
        b"Stale Nonce"
    };
    let mut error = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
    error.extend_from_slice(reason);
    for (kind, value) in [
        (ERROR_CODE, error.as_slice()),
        (NONCE, nonce),
        (REALM, realm.as_bytes()),
    ] {
        attributes.extend_from_slice(&kind.to_be_bytes());
        attributes.extend_from_slice(&(value.len() as u16).to_be_bytes());
        attributes.extend_from_slice(value);
        attributes.resize(attributes.len().div_ceil(4) * 4, 0);
    }
    let kind =
        ERROR_RESPONSE | (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2);
    let mut message = Vec::with_capacity(20 + attributes.len());
    message.extend_from_slice(&kind.to_be_bytes());
    message.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    message.extend_from_slice(&request[4..20]);
    message.extend_from_slice(&attributes);
    message
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request of `method` with these attributes (each padded to four bytes).
    pub(crate) fn request(method: u16, attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut message = method.to_be_bytes().to_vec();
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC_COOKIE);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn requests_attributes_and_error_responses_are_read_and_written() {
        let allocate = request(ALLOCATE, &[(0x000d, &[0, 0, 2, 88]), (USERNAME, b"5:test")]);
        assert_eq!(authenticated_request(&allocate), Some(ALLOCATE));
        assert_eq!(attribute(&allocate, USERNAME), Some(&b"5:test"[..]));
        assert_eq!(attribute(&allocate, NONCE), None);
        assert_eq!(authenticated_request(&request(0x001, &[])), None, "binding");
        assert_eq!(authenticated_request(&request(0x016, &[])), None, "send");
        assert_eq!(authenticated_request(&allocate[..19]), None);
        // An attribute running past the message is not read.
        assert_eq!(attribute(&allocate[..allocate.len() - 4], USERNAME), None);

        let answer = nonce_error(&allocate, ALLOCATE, 401, "parlor", b"abc123");
        assert_eq!(&answer[..2], &[0x01, 0x13]);
        assert_eq!(
            &answer[4..20],
            &allocate[4..20],
            "cookie and transaction id"
        );
        assert_eq!(error_response_code(&answer), Some((ALLOCATE, 401)));
        assert_eq!(attribute(&answer, NONCE), Some(&b"abc123"[..]));
        assert_eq!(attribute(&answer, REALM), Some(&b"parlor"[..]));
        let refresh = request(REFRESH, &[]);
        let stale = nonce_error(&refresh, REFRESH, 438, "parlor", b"n");
        assert_eq!(&stale[..2], &[0x01, 0x14]);
        assert_eq!(error_response_code(&stale), Some((REFRESH, 438)));
        let bind = nonce_error(&request(CHANNEL_BIND, &[]), CHANNEL_BIND, 401, "r", b"n");
        assert_eq!(&bind[..2], &[0x01, 0x19]);
    }
}
