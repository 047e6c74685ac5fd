"""IMU (inertial measurement unit) sources."""
