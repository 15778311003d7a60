"""What several test folders share and is not a fixture: real full disks, twins served on the embedded model."""
