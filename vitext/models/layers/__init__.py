"""Pieces shared by the backbones."""
