"""Writing pieces out: MIDI, MusicXML, WAV previews and piano rolls, chosen by the file suffix."""
