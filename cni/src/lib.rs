//! Pod networking for berth: the built-in bridge network and standard CNI plugins.
