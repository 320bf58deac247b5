//! Model zoos: population training of CNNs with every epoch kept, the on-disk zoo, resume.
