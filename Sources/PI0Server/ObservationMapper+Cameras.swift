// Which checkpoint camera each of a layout's cameras feeds, for `pi0 serve` to log at start.
extension ObservationMapper {
    /// Layout camera key (e.g. "observation/wrist_image", "images/cam_high") → checkpoint camera it feeds,
    /// or nil when the checkpoint has no camera for it (its frames are then ignored). Native: each camera to itself.
    public var cameraAssignments: [(layoutKey: String, checkpointCamera: String?)] {
        if layout == .native { return checkpointCameras.map { ($0, $0) } }
        return layout.cameras.enumerated().map { i, cam in (cam.path.joined(separator: "/"), target(forLayoutCamera: i, name: cam.name)) }
    }
}
