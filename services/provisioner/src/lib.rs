//! paved-provisioner
