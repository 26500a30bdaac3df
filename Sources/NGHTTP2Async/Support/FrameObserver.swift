public import NGHTTP2

/// Sees every frame a connection sends and receives, e.g. to print them like `nghttp -v`.
public typealias FrameObserver = @Sendable (_ direction: FrameDirection, _ frame: Frame) -> Void

/// Whether a frame was sent or received.
public enum FrameDirection: Sendable, Hashable {
    /// This side sent the frame.
    case sent
    /// The peer sent the frame.
    case received
}
