internal import CNGHTTP2

/// HPACK header compression for HTTP/2 ([RFC 7541](https://www.rfc-editor.org/rfc/rfc7541.html)),
/// over libnghttp2's `nghttp2_hd_deflate_*` and `nghttp2_hd_inflate_*` functions.
///
/// A connection has one ``Encoder`` per direction it sends in and one ``Decoder`` per direction it
/// receives in; each keeps the dynamic table
/// ([RFC 7541 §2.3.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-2.3.2)) that its peer's
/// counterpart mirrors, so every header block must go through them in the order it is sent or received.
/// An HTTP/2 session does all of this itself; use these types for HPACK on its own (tests, proxies,
/// tools).
public enum HPACK {}

extension HPACK {
    /// The number of entries in the HPACK static table
    /// ([RFC 7541 Appendix A](https://www.rfc-editor.org/rfc/rfc7541.html#appendix-A)).
    static let staticTableCount = 61

    /// Copies one `nghttp2_nv` table entry (or nothing) into a header field.
    static func field(_ nv: UnsafePointer<nghttp2_nv>?) -> HeaderField? {
        guard let nv else { return nil }
        return HeaderBlock.fields(nv, count: 1).first
    }

    /// Converts a size argument to `size_t`, throwing `.invalidArgument` for a negative one.
    static func size(_ value: Int) throws(NGHTTP2Error) -> Int {
        guard value >= 0 else { throw .invalidArgument }
        return value
    }
}
