"""Model analysis: complexity (params/FLOPs), speed, attention statistics."""
