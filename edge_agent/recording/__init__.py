"""Recording: camera readers, segment files, their index, and repair after a crash."""
