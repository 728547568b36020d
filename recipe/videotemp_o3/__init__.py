"""VideoTemp-o3 recipe for verl: agent protocol, agent loop, configs."""
