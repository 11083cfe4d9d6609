"""Frames in and out: cameras, files, synthetic input, the outgoing track, recording. cv2 lives here."""
