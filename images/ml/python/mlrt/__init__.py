"""mlrt helpers that ship in the ML image (driver and executors alike)."""
