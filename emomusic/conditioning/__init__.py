"""Emotion → musical attributes (EmoGen stage 1: supervised clustering over labelled music)."""
