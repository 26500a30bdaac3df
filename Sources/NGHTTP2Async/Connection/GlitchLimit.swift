/// How many stream errors and invalid frames a peer may cause on one connection before it is sent GOAWAY
/// ENHANCE_YOUR_CALM and closed: a token bucket of `burst` glitches, refilled at `perSecond`.
///
/// A "glitch" is anything the peer does that makes this side reset a stream or drop a frame: a malformed request,
/// a frame on a closed stream, a zero WINDOW_UPDATE, DATA beyond the window, and every other invalid frame
/// libnghttp2 reports. Each costs the peer a few bytes and this side the work the stream had started, which is the
/// attack of CVE-2025-8671 ("MadeYouReset", RFC 9113 §10.5). libnghttp2 1.67 added such a limit with these
/// defaults; 1.52 has none, so this package counts itself. (RST_STREAM floods, CVE-2023-44487, are limited by
/// libnghttp2's own `Session.Options.streamResetRateLimit`.)
public struct GlitchLimit: Sendable, Hashable {
    /// Glitches taken at once. Default 1,000.
    public var burst: Int
    /// Glitches forgiven per second after that. Default 33.
    public var perSecond: Int

    /// A bucket of `burst` glitches refilled at `perSecond` (at least 1).
    public init(burst: Int = 1000, perSecond: Int = 33) {
        self.burst = max(1, burst)
        self.perSecond = max(1, perSecond)
    }
}
