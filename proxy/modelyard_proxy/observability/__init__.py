"""What the proxy tells about itself: metrics and their exposition, the audit trail, tracing and cost accounting."""
