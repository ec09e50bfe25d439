"""The scrape wing: web image search and safe downloads into a data set.

``search`` (providers behind one interface: ddgs, a fake for tests; query templates), ``fetch`` (one URL:
SSRF guard, caps, decode), ``known`` (dedupe index and resume log), ``run`` (the thread pool that ties them
together and records provenance). Imports the data wing only.
"""
