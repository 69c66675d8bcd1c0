"""Starting a process: the launcher, the bootstrap, the finder, plugin discovery and activation."""
