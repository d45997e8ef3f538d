"""Arrangement: a generated piano piece as named tracks for real instruments (melody, chords, bass, drums).

The generator writes piano. Arranging splits its notes into roles (a learned melody extractor trained
on POP909's annotated MELODY tracks; bass and inner voices from the rest), gives each role a General
MIDI instrument inside its playable range, and adds drums from a groove model learned from the Groove
MIDI Dataset. Stages below (vocab, music, export) only.
"""
