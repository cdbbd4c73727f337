//! The share link as a QR code, drawn as one SVG path (in the browser: the link carries the
//! secret digits, so the server never draws it).

use qrcode::{Color, EcLevel, QrCode};

/// A QR code of `text`: its width in modules and an SVG path of its dark modules (one
/// rectangle per horizontal run), to draw in a `viewBox` of that width plus a quiet zone.
pub fn path(text: &str) -> Option<(usize, String)> {
    let code = QrCode::with_error_correction_level(text, EcLevel::M).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let mut d = String::new();
    for (y, row) in colors.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == Color::Dark {
                let start = x;
                while x < width && row[x] == Color::Dark {
                    x += 1;
                }
                d.push_str(&format!("M{start} {y}h{}v1h-{}z", x - start, x - start));
            } else {
                x += 1;
            }
        }
    }
    Some((width, d))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_link_becomes_a_qr_code_with_its_three_finder_patterns() {
        let (width, d) = super::path("https://parlor.example/code#4829137150").unwrap();
        assert!(width >= 25 && width % 4 == 1, "{width}");
        // Each finder pattern's top edge is a run of seven dark modules.
        assert!(d.starts_with("M0 0h7v1h-7z"), "{}", &d[..40]);
        assert!(d.contains(&format!("M{} 0h7v1h-7z", width - 7)));
        assert!(d.contains(&format!("M0 {}h7v1h-7z", width - 7)));
    }
}
