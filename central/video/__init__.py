"""Video relay: edge uplinks in, one upstream per camera stream, fan-out to viewers, exports.

H.265 recordings are relayed as they are (packet copy), never transcoded on central: a
server-side HEVC decode + H.264 encode costs about a core per stream, which would undo
"one core serves many viewers", and it would put re-encoded pixels in front of inspectors
instead of what the camera recorded. Browsers that decode HEVC (Safari, Edge and Chrome
with a hardware decoder) play it; the others are told so and offered the clip export
(packet copy MP4 plus signed manifest) to download and play in a desktop player.
"""
