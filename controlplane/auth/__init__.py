"""Tokens: the signing key, issuing and verifying JWTs (dataplane and admin), and the revocation list.

Used by the ADS server (dataplane tokens on stream open) and the HTTP API (admin tokens on writes). The
cryptography is PyJWT's (RS256 over `cryptography`); nothing here signs or verifies by hand.
"""
