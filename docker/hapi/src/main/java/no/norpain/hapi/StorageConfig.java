package no.norpain.hapi;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.jpa.api.config.JpaStorageSettings;
import ca.uhn.fhir.jpa.config.HibernatePropertiesProvider;
import ca.uhn.fhir.jpa.config.util.HapiEntityManagerFactoryUtil;
import ca.uhn.fhir.jpa.model.config.PartitionSettings;
import ca.uhn.fhir.jpa.model.config.SubscriptionSettings;
import jakarta.persistence.EntityManagerFactory;
import javax.sql.DataSource;
import org.springframework.beans.factory.config.ConfigurableListableBeanFactory;
import org.springframework.boot.autoconfigure.orm.jpa.JpaProperties;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.orm.jpa.JpaTransactionManager;
import org.springframework.orm.jpa.LocalContainerEntityManagerFactoryBean;

/** HAPI's storage: the registry's JpaStorageSettings and the entity manager on the Spring Boot DataSource. */
@Configuration
@EnableConfigurationProperties({RegistrySettings.class, JpaProperties.class})
public class StorageConfig {

	@Bean
	public JpaStorageSettings jpaStorageSettings(RegistrySettings registry) {
		if (!"R4".equalsIgnoreCase(registry.getFhirVersion())) {
			throw new IllegalStateException("This server is built for FHIR R4 only (hapi.fhir.fhir_version)");
		}
		JpaStorageSettings settings = new JpaStorageSettings();
		settings.setAllowMultipleDelete(registry.isAllowMultipleDelete());
		settings.setExpungeEnabled(registry.isExpungeEnabled());
		settings.setDeleteExpungeEnabled(registry.isDeleteExpungeEnabled());
		settings.setEnforceReferentialIntegrityOnDelete(registry.isEnforceReferentialIntegrityOnDelete());
		settings.setEnforceReferentialIntegrityOnWrite(registry.isEnforceReferentialIntegrityOnWrite());
		settings.setAutoCreatePlaceholderReferenceTargets(registry.isAutoCreatePlaceholderReferenceTargets());
		settings.setAllowExternalReferences(registry.isAllowExternalReferences());
		settings.setAllowContainsSearches(registry.isAllowContainsSearches());
		settings.setResourceClientIdStrategy(registry.getClientIdStrategy());
		settings.setResourceServerIdStrategy(registry.getServerIdStrategy());
		settings.setReuseCachedSearchResultsForMillis(registry.getReuseCachedSearchResultsMillis());
		settings.setFetchSizeDefaultMaximum(registry.getMaxPageSize());
		// No full-text index: searches run on PostgreSQL only.
		settings.setHibernateSearchIndexSearchParams(false);
		return settings;
	}

	/** No partitions: one registry, one store. */
	@Bean
	public PartitionSettings partitionSettings() {
		return new PartitionSettings();
	}

	/** No subscriptions are offered (none of the default channel types is enabled). */
	@Bean
	public SubscriptionSettings subscriptionSettings() {
		return new SubscriptionSettings();
	}

	@Bean
	@Primary
	public LocalContainerEntityManagerFactoryBean entityManagerFactory(
			DataSource dataSource,
			ConfigurableListableBeanFactory beanFactory,
			FhirContext fhirContext,
			JpaStorageSettings storageSettings,
			JpaProperties jpaProperties) {
		LocalContainerEntityManagerFactoryBean factory =
				HapiEntityManagerFactoryUtil.newEntityManagerFactory(beanFactory, fhirContext, storageSettings);
		factory.setPersistenceUnitName("HAPI_PU");
		factory.setDataSource(dataSource);
		// spring.jpa.properties.* (hibernate.dialect, hbm2ddl, search off) as in the official image.
		factory.getJpaPropertyMap().putAll(jpaProperties.getProperties());
		return factory;
	}

	@Bean
	@Primary
	public JpaTransactionManager transactionManager(EntityManagerFactory entityManagerFactory) {
		return new JpaTransactionManager(entityManagerFactory);
	}

	@Bean
	@Primary
	public HibernatePropertiesProvider hibernatePropertiesProvider() {
		return new HibernatePropertiesProvider();
	}
}
