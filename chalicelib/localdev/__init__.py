"""Local-stage stand-ins for what AWS does around our Lambdas (never deployed routes)."""
