/** The daemon's version, printed by `gossip --version`. */
export const VERSION = "0.1.0";
