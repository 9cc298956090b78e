"""Files: atomic writes, tables, images, checkpoints."""
