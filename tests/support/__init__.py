"""What several test layers use to stand in for the systems citycase talks to."""
