"""Kubernetes manifests for the suite (`deploy/README.md`); `generate.py` writes their generated parts."""
