"""Reports of a run: the console, the JUnit file; each reads only the journal's contents."""
