"""Symbolic music primitives: note arrays, MIDI I/O, tokenizer, attributes, rendering."""
