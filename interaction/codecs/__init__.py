"""Stream codecs: dMel audio tokens, the Griffin-Lim vocoder, byte text tokens, video patches."""
