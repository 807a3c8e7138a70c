//! The MesoNet authors' weights and Keras outputs (filled by the models issue).
