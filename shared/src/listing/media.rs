//! Listing media (docs/RULES.md R4.12–R4.16): uploaded as raw bodies to
//! `PUT /api/v1/products/{id}/media/{kind}` (`.../{kind}/{index}` for kinds with several items)
//! and checked before anything is stored.
//!
//! The file's type is decided by its magic bytes, never by the client's `Content-Type` alone:
//! the header must be present and agree with the bytes, so a renamed or mislabelled file is
//! refused (415) instead of being served back under a type it is not.

use serde::{Deserialize, Serialize};

use super::{Warning, WarningCode};
use crate::error::{ApiError, Code};

/// The slots a listing has for files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MediaKind {
    Logo,
    Screenshot,
    Certification,
    Video,
    UserGuide,
}

/// A file type recognized by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FileType {
    Png,
    Jpeg,
    Pdf,
    Mp4,
}

impl FileType {
    const fn mime(self) -> &'static str {
        match self {
            FileType::Png => "image/png",
            FileType::Jpeg => "image/jpeg",
            FileType::Pdf => "application/pdf",
            FileType::Mp4 => "video/mp4",
        }
    }

    /// Whether a (lowercased, parameter-free) `Content-Type` names this type. `image/jpg` is
    /// not registered but common enough to accept for JPEG.
    fn is_named_by(self, content_type: &str) -> bool {
        content_type == self.mime() || (self == FileType::Jpeg && content_type == "image/jpg")
    }

    /// The type announced by the file's first bytes. A PNG is only recognized with its IHDR
    /// chunk in place, since that is where its size is read from.
    fn sniff(body: &[u8]) -> Option<Self> {
        if png_dimensions(body).is_some() {
            Some(FileType::Png)
        } else if body.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileType::Jpeg)
        } else if body.starts_with(b"%PDF-") {
            Some(FileType::Pdf)
        } else if body.len() >= 12 && &body[4..8] == b"ftyp" {
            // ISO base media: a box size, then the `ftyp` box type and its major brand.
            Some(FileType::Mp4)
        } else {
            None
        }
    }
}

impl MediaKind {
    pub(crate) const ALL: [MediaKind; 5] = [
        MediaKind::Logo,
        MediaKind::Screenshot,
        MediaKind::Certification,
        MediaKind::Video,
        MediaKind::UserGuide,
    ];

    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            MediaKind::Logo => "logo",
            MediaKind::Screenshot => "screenshot",
            MediaKind::Certification => "certification",
            MediaKind::Video => "video",
            MediaKind::UserGuide => "user_guide",
        }
    }

    /// Parses the `{kind}` path segment; `None` means the route does not exist (404).
    pub(crate) fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == segment)
    }

    /// Kinds with several items are addressed by a 1-based index in the path.
    pub(crate) const fn is_multi(self) -> bool {
        matches!(self, MediaKind::Screenshot | MediaKind::Certification)
    }

    /// How many items the kind holds: its indices are `1..=max_items()`.
    pub(crate) const fn max_items(self) -> u32 {
        match self {
            MediaKind::Screenshot => 10,
            MediaKind::Certification => 6,
            MediaKind::Logo | MediaKind::Video | MediaKind::UserGuide => 1,
        }
    }

    /// The largest accepted file, per item, in bytes (`MB` in the publishing guide is MiB).
    ///
    /// The publishing guide sets the logo (7.5 MB), each certification (2 MB) and the user guide (10 MB).
    /// It gives no limit for screenshots, which we cap like the user guide at 10 MiB (ample for a
    /// full-resolution PNG), nor for the video, capped at 100 MiB: a short product video, and
    /// still small enough to keep in the key-value store.
    pub(crate) const fn max_bytes(self) -> usize {
        match self {
            MediaKind::Logo => 7_864_320,
            MediaKind::Screenshot => 10_485_760,
            MediaKind::Certification => 2_097_152,
            MediaKind::Video => 104_857_600,
            MediaKind::UserGuide => 10_485_760,
        }
    }

    /// Whether a listing must have this media before it is submitted for review.
    pub(crate) const fn is_required(self) -> bool {
        matches!(self, MediaKind::Logo | MediaKind::UserGuide)
    }

    /// The file types the kind takes: the logo is PNG only; screenshots and certifications
    /// ("image") PNG or JPEG; the video MP4; the user guide PDF.
    const fn accepted(self) -> &'static [FileType] {
        match self {
            MediaKind::Logo => &[FileType::Png],
            MediaKind::Screenshot | MediaKind::Certification => &[FileType::Png, FileType::Jpeg],
            MediaKind::Video => &[FileType::Mp4],
            MediaKind::UserGuide => &[FileType::Pdf],
        }
    }

    fn accepted_list(self) -> String {
        let names: Vec<&str> = self.accepted().iter().map(|t| t.mime()).collect();
        names.join(" or ")
    }
}

/// An upload that passed [`check_upload`]: what to record beside the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct CheckedMedia {
    /// The type read from the magic bytes, in its canonical spelling: served back as the
    /// `Content-Type` of `GET`.
    pub content_type: &'static str,
    pub size: usize,
    /// Width and height in pixels, from the PNG header, for PNG files.
    pub png_dimensions: Option<(u32, u32)>,
}

/// Checks an upload of `kind` (item `index` for multi-item kinds) before it is stored.
///
/// Refusals, in this order: a missing, unexpected or out-of-range index (400
/// `InvalidMediaIndex`); an empty body (400 `Required`); more than [`MediaKind::max_bytes`]
/// (413 `PayloadTooLarge`; exactly the limit is accepted); no `Content-Type`, a file type the
/// kind does not take, or a `Content-Type` that disagrees with the magic bytes (415
/// `UnsupportedMediaType`).
pub(crate) fn check_upload(
    kind: MediaKind,
    index: Option<u32>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<CheckedMedia, ApiError> {
    check_index(kind, index)?;
    if body.is_empty() {
        return Err(ApiError::new(
            Code::Required,
            format!("the {} file is empty", kind.as_str()),
        ));
    }
    if body.len() > kind.max_bytes() {
        return Err(ApiError::new(
            Code::PayloadTooLarge,
            format!(
                "a {} may be at most {} bytes, got {}",
                kind.as_str(),
                kind.max_bytes(),
                body.len()
            ),
        ));
    }
    let Some(declared) = content_type else {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "a Content-Type is required: {} for a {}",
                kind.accepted_list(),
                kind.as_str()
            ),
        ));
    };
    let declared = declared
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let detected = FileType::sniff(body).filter(|t| kind.accepted().contains(t));
    let Some(detected) = detected else {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "the file is not {}, the type a {} must be (judged by its content)",
                kind.accepted_list(),
                kind.as_str()
            ),
        ));
    };
    if !detected.is_named_by(&declared) {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "Content-Type `{declared}` does not match the file, which is {}",
                detected.mime()
            ),
        ));
    }
    Ok(CheckedMedia {
        content_type: detected.mime(),
        size: body.len(),
        png_dimensions: match detected {
            FileType::Png => png_dimensions(body),
            FileType::Jpeg | FileType::Pdf | FileType::Mp4 => None,
        },
    })
}

fn check_index(kind: MediaKind, index: Option<u32>) -> Result<(), ApiError> {
    let refusal = |detail: String| Err(ApiError::new(Code::InvalidMediaIndex, detail));
    match (kind.is_multi(), index) {
        (true, None) => refusal(format!(
            "a {} is addressed by its index: /media/{}/1 to /media/{}/{}",
            kind.as_str(),
            kind.as_str(),
            kind.as_str(),
            kind.max_items()
        )),
        (true, Some(i)) if i == 0 || i > kind.max_items() => refusal(format!(
            "a listing has at most {} {} items: the index is 1 to {}, got {i}",
            kind.max_items(),
            kind.as_str(),
            kind.max_items()
        )),
        (false, Some(_)) => refusal(format!(
            "a listing has a single {}: /media/{} takes no index",
            kind.as_str(),
            kind.as_str()
        )),
        (true, Some(_)) | (false, None) => Ok(()),
    }
}

/// The size the marketplace displays logos at (the publishing guide: "290 × 290 pixels").
pub(crate) const LOGO_RECOMMENDED_SIZE: (u32, u32) = (290, 290);

/// Advice for the product view about a stored logo of `width` × `height` px: another size than
/// [`LOGO_RECOMMENDED_SIZE`] is accepted, but the catalog will scale it.
pub(crate) fn logo_size_warning(width: u32, height: u32) -> Option<Warning> {
    let (w, h) = LOGO_RECOMMENDED_SIZE;
    ((width, height) != LOGO_RECOMMENDED_SIZE).then(|| Warning {
        field: "media.logo".to_owned(),
        code: WarningCode::LogoNotRecommendedSize,
        message: format!("the logo is {width} × {height} px; {w} × {h} px is recommended"),
    })
}

const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

/// Width and height from a PNG's header: the signature, then the IHDR chunk (length, `IHDR`,
/// width, height as big-endian u32). `None` if the bytes are not a PNG with a well-formed start.
fn png_dimensions(body: &[u8]) -> Option<(u32, u32)> {
    let header = body.get(..24)?;
    if header[..8] != PNG_SIGNATURE || &header[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes(header[16..20].try_into().ok()?);
    let height = u32::from_be_bytes(header[20..24].try_into().ok()?);
    // The PNG specification forbids zero dimensions.
    (width > 0 && height > 0).then_some((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use proptest::prelude::*;

    /// The start of a PNG: signature and IHDR chunk (8-bit RGBA), then an empty IEND. Enough for
    /// the checks here, which read no further than the header.
    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = PNG_SIGNATURE.to_vec();
        bytes.extend(13u32.to_be_bytes());
        bytes.extend(b"IHDR");
        bytes.extend(width.to_be_bytes());
        bytes.extend(height.to_be_bytes());
        bytes.extend([8, 6, 0, 0, 0]);
        bytes.extend([0; 4]); // CRC, not checked
        bytes.extend(0u32.to_be_bytes());
        bytes.extend(b"IEND");
        bytes.extend([0xAE, 0x42, 0x60, 0x82]);
        bytes
    }

    fn jpeg() -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10];
        bytes.extend(b"JFIF\0");
        bytes.extend([0xFF, 0xD9]);
        bytes
    }

    fn pdf() -> Vec<u8> {
        b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n".to_vec()
    }

    fn mp4() -> Vec<u8> {
        let mut bytes = 24u32.to_be_bytes().to_vec();
        bytes.extend(b"ftypisom");
        bytes.extend(0x200u32.to_be_bytes());
        bytes.extend(b"isommp41");
        bytes
    }

    /// `file` padded with zeros to exactly `len` bytes, as a large file of that type would be.
    fn sized(mut file: Vec<u8>, len: usize) -> Vec<u8> {
        file.resize(len, 0);
        file
    }

    fn refused(
        kind: MediaKind,
        index: Option<u32>,
        content_type: Option<&str>,
        body: &[u8],
    ) -> ApiError {
        check_upload(kind, index, content_type, body).expect_err("the upload should be refused")
    }

    #[test]
    fn kinds_parse_from_their_path_segments() {
        for kind in MediaKind::ALL {
            assert_eq!(MediaKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.is_multi(), kind.max_items() > 1);
        }
        assert_eq!(MediaKind::parse("user-guide"), None);
        assert!(MediaKind::Logo.is_required() && MediaKind::UserGuide.is_required());
        assert!(!MediaKind::Video.is_required());
    }

    #[test]
    fn each_byte_limit_is_inclusive() {
        let cases = [
            (MediaKind::Logo, None, "image/png", png(290, 290), 7_864_320),
            (
                MediaKind::Screenshot,
                Some(1),
                "image/jpeg",
                jpeg(),
                10_485_760,
            ),
            (
                MediaKind::Certification,
                Some(1),
                "image/png",
                png(10, 10),
                2_097_152,
            ),
            (MediaKind::Video, None, "video/mp4", mp4(), 104_857_600),
            (
                MediaKind::UserGuide,
                None,
                "application/pdf",
                pdf(),
                10_485_760,
            ),
        ];
        for (kind, index, content_type, file, limit) in cases {
            assert_eq!(kind.max_bytes(), limit);
            let at_limit = sized(file, limit);
            let checked = check_upload(kind, index, Some(content_type), &at_limit).unwrap();
            assert_eq!(checked.size, limit);
            assert_eq!(checked.content_type, content_type);
            let over = sized(at_limit, limit + 1);
            let err = refused(kind, index, Some(content_type), &over);
            assert_eq!(err.code, Code::PayloadTooLarge, "{kind:?}");
            assert_eq!(err.status(), StatusCode::PAYLOAD_TOO_LARGE);
        }
    }

    #[test]
    fn at_most_6_certifications_indexed_from_1() {
        for index in 1..=6 {
            assert!(
                check_upload(
                    MediaKind::Certification,
                    Some(index),
                    Some("image/jpeg"),
                    &jpeg()
                )
                .is_ok()
            );
        }
        for index in [Some(0), Some(7), None] {
            let err = refused(MediaKind::Certification, index, Some("image/jpeg"), &jpeg());
            assert_eq!(err.code, Code::InvalidMediaIndex, "{index:?}");
            assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn at_most_10_screenshots_and_single_kinds_take_no_index() {
        assert!(
            check_upload(
                MediaKind::Screenshot,
                Some(10),
                Some("image/png"),
                &png(800, 600)
            )
            .is_ok()
        );
        let err = refused(
            MediaKind::Screenshot,
            Some(11),
            Some("image/png"),
            &png(800, 600),
        );
        assert_eq!(err.code, Code::InvalidMediaIndex);
        let err = refused(MediaKind::Logo, Some(1), Some("image/png"), &png(290, 290));
        assert_eq!(err.code, Code::InvalidMediaIndex);
    }

    #[test]
    fn wrong_magic_bytes_behind_a_right_content_type_are_refused() {
        let cases: [(MediaKind, Option<u32>, &str, Vec<u8>); 6] = [
            (MediaKind::Logo, None, "image/png", jpeg()),
            (
                MediaKind::Logo,
                None,
                "image/png",
                b"not an image at all, honest".to_vec(),
            ),
            (MediaKind::Certification, Some(1), "image/png", jpeg()),
            (MediaKind::Screenshot, Some(1), "image/jpeg", png(10, 10)),
            (MediaKind::UserGuide, None, "application/pdf", png(10, 10)),
            (MediaKind::Video, None, "video/mp4", pdf()),
        ];
        for (kind, index, content_type, body) in cases {
            let err = refused(kind, index, Some(content_type), &body);
            assert_eq!(
                err.code,
                Code::UnsupportedMediaType,
                "{kind:?} {content_type}"
            );
            assert_eq!(err.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        }
    }

    #[test]
    fn a_file_type_the_kind_does_not_take_is_refused_even_when_labelled_correctly() {
        let cases: [(MediaKind, Option<u32>, &str, Vec<u8>); 4] = [
            (MediaKind::Logo, None, "image/jpeg", jpeg()),
            (MediaKind::UserGuide, None, "image/png", png(10, 10)),
            (MediaKind::Certification, Some(2), "application/pdf", pdf()),
            (MediaKind::Video, None, "application/pdf", pdf()),
        ];
        for (kind, index, content_type, body) in cases {
            let err = refused(kind, index, Some(content_type), &body);
            assert_eq!(err.code, Code::UnsupportedMediaType, "{kind:?}");
        }
    }

    #[test]
    fn the_content_type_is_required_and_compared_without_parameters_or_case() {
        let err = refused(MediaKind::Logo, None, None, &png(290, 290));
        assert_eq!(err.code, Code::UnsupportedMediaType);
        let err = refused(
            MediaKind::Logo,
            None,
            Some("application/octet-stream"),
            &png(290, 290),
        );
        assert_eq!(err.code, Code::UnsupportedMediaType);
        for content_type in ["IMAGE/PNG", "image/png; charset=binary", " image/png "] {
            assert!(
                check_upload(MediaKind::Logo, None, Some(content_type), &png(290, 290)).is_ok()
            );
        }
        let checked =
            check_upload(MediaKind::Screenshot, Some(1), Some("image/jpg"), &jpeg()).unwrap();
        assert_eq!(checked.content_type, "image/jpeg");
    }

    #[test]
    fn an_empty_body_is_a_bad_request() {
        let err = refused(MediaKind::UserGuide, None, Some("application/pdf"), b"");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn png_dimensions_are_read_from_the_header() {
        let checked =
            check_upload(MediaKind::Logo, None, Some("image/png"), &png(290, 145)).unwrap();
        assert_eq!(checked.png_dimensions, Some((290, 145)));
        let jpeg =
            check_upload(MediaKind::Screenshot, Some(1), Some("image/jpeg"), &jpeg()).unwrap();
        assert_eq!(jpeg.png_dimensions, None);
        assert_eq!(png_dimensions(&png(1, u32::MAX)), Some((1, u32::MAX)));
        // Truncated, IHDR missing, or zero-sized: not a PNG we can accept.
        assert_eq!(png_dimensions(&png(290, 290)[..23]), None);
        let mut no_ihdr = png(290, 290);
        no_ihdr[12..16].copy_from_slice(b"IDAT");
        assert_eq!(png_dimensions(&no_ihdr), None);
        assert_eq!(png_dimensions(&png(0, 290)), None);
        let err = refused(MediaKind::Logo, None, Some("image/png"), &png(0, 290));
        assert_eq!(err.code, Code::UnsupportedMediaType);
    }

    #[test]
    fn a_logo_of_another_size_than_290_by_290_gets_a_warning() {
        assert_eq!(logo_size_warning(290, 290), None);
        for (width, height) in [(291, 290), (290, 289), (580, 580)] {
            let warning = logo_size_warning(width, height).unwrap();
            assert_eq!(warning.code, WarningCode::LogoNotRecommendedSize);
            assert_eq!(warning.field, "media.logo");
            assert!(warning.message.contains(&format!("{width} × {height}")));
        }
    }

    proptest! {
        #[test]
        fn any_png_header_yields_its_dimensions(width in 1u32.., height in 1u32..) {
            let body = png(width, height);
            let checked = check_upload(MediaKind::Logo, None, Some("image/png"), &body).unwrap();
            prop_assert_eq!(checked.png_dimensions, Some((width, height)));
        }

        #[test]
        fn bytes_without_a_known_signature_are_never_accepted(
            body in prop::collection::vec(any::<u8>(), 1..64),
            kind in prop::sample::select(MediaKind::ALL.to_vec()),
        ) {
            prop_assume!(FileType::sniff(&body).is_none());
            let index = kind.is_multi().then_some(1);
            for content_type in ["image/png", "image/jpeg", "application/pdf", "video/mp4"] {
                let err = refused(kind, index, Some(content_type), &body);
                prop_assert_eq!(err.code, Code::UnsupportedMediaType);
            }
        }
    }
}
