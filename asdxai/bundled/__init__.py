"""The bundled models (package data); ``train_bundled`` re-trains them."""
