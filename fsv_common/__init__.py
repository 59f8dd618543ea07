"""Small pieces both programs use that are not part of the wire contract."""
